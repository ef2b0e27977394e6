"""Full-text search (events.search tsvector, GIN) and the stats rollups.

Events already stored are indexed and counted (store/search_backfill.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

from trailkeep.store.rollup_specs import ROLLUPS
from trailkeep.store.schema import postgres_metadata
from trailkeep.store.search_backfill import backfill_rollups, backfill_text

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("search", TSVECTOR, nullable=True))
    for spec in ROLLUPS:
        postgres_metadata.tables[spec.table].create(op.get_bind())
    backfill_rollups(op.get_bind())
    backfill_text(op.get_bind(), postgres=True)
    # After the backfill: one index build instead of an update per row.
    op.create_index("ix_events_search", "events", ["search"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_events_search", "events")
    for spec in ROLLUPS:
        op.drop_table(spec.table)
    op.drop_column("events", "search")
