"""Migration body shared by both backends: storage for retention.

The tenant's policy and legal-hold record (``tenants.retention``,
``tenants.legal_hold_info``), the tombstones of pruned events (``pruned_events``),
retention runs and archive segments. Nothing is backfilled: no event was pruned before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import MetaData

TABLES = ("pruned_events", "retention_runs", "archive_segments")


def upgrade(metadata: MetaData) -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("retention", sa.Text, nullable=True))
        batch.add_column(sa.Column("legal_hold_info", sa.Text, nullable=True))
    bind = op.get_bind()
    for name in TABLES:
        metadata.tables[name].create(bind)


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("legal_hold_info")
        batch.drop_column("retention")
    for name in reversed(TABLES):
        op.drop_table(name)
