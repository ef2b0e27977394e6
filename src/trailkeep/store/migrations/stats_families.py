"""The body of migration 0004 (more stats rollups), the same on both backends: each
backend's version file names its own schema."""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData

from trailkeep.store.migrations.search_backfill import add_rollups
from trailkeep.store.stats.rollup_specs import ROLLUP_INDEXES, rollups_named

ROLLUPS = rollups_named(
    "stats_totals_hourly",
    "stats_totals_daily",
    "stats_action_hourly",
    "stats_action_daily",
    "stats_actor_2d",
    "stats_actor_4d",
    "stats_actor_8d",
    "stats_actor_16d",
)


def upgrade(metadata: MetaData) -> None:
    """Create and fill the rollups, then their indexes by group and by count."""
    add_rollups(op.get_bind(), metadata, ROLLUPS)
    for name, table, columns in ROLLUP_INDEXES:
        op.create_index(name, table, list(columns))


def downgrade() -> None:
    for name, table, _columns in ROLLUP_INDEXES:
        op.drop_index(name, table)
    for spec in ROLLUPS:
        op.drop_table(spec.table)
