"""Full-text search (events.search tsvector, GIN) and the stats rollups.

Events already stored are indexed and counted (store/migrations/search_backfill.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

from trailkeep.store.migrations.search_backfill import add_rollups, backfill_text
from trailkeep.store.stats.rollup_specs import rollups_named
from trailkeep.store.tables import postgres_metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The rollups as this revision made them (later revisions add more).
ROLLUPS = rollups_named(
    "stats_hourly", "stats_daily", "stats_actor_daily", "stats_target_hourly", "stats_target_daily"
)


def upgrade() -> None:
    op.add_column("events", sa.Column("search", TSVECTOR, nullable=True))
    add_rollups(op.get_bind(), postgres_metadata, ROLLUPS)
    backfill_text(op.get_bind(), postgres=True)
    # After the backfill: one index build instead of an update per row.
    op.create_index("ix_events_search", "events", ["search"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_events_search", "events")
    for spec in ROLLUPS:
        op.drop_table(spec.table)
    op.drop_column("events", "search")
