"""Migration body shared by both backends: storage for privacy.

The tenant's privacy settings (``tenants.privacy``), its subjects' data keys
(``subject_keys``), its index key (``tenant_keys``) and its events per subject
(``subject_stats``). Nothing is backfilled: an event gets its top-level ``subject``
member only from the server code that encrypts it under a subject's key, which is
newer than this revision (the stored document is built from known fields), so every
event stored before it counts for no subject and the indexer's positions stand.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import MetaData

TABLES = ("subject_keys", "tenant_keys", "subject_stats")


def upgrade(metadata: MetaData) -> None:
    # batch: on SQLite a plain ADD COLUMN (nothing to copy); on PostgreSQL an ALTER.
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("privacy", sa.Text, nullable=True))
    bind = op.get_bind()
    for name in TABLES:
        # Table.create makes the table's indexes too (the partial unique index).
        metadata.tables[name].create(bind)


def downgrade() -> None:
    # tenants first: the indexer's transaction locks tenants, then subject_stats
    # (log/positions.advance). Taking them in the same order, a downgrade waits for an
    # indexer still finishing a round instead of deadlocking with it.
    # SQLite: batch copies the table without the column (as 0003's downgrade does).
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("privacy")
    for name in reversed(TABLES):
        op.drop_table(name)
