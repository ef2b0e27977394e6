"""More stats rollups: totals, actions, and 2 to 16-day actor buckets (rollup_specs.py).

They are filled from the stored events; the daily actor and hourly
action rollups get an index by group.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from trailkeep.store.rollup_specs import ROLLUP_INDEXES, rollups_named
from trailkeep.store.schema import postgres_metadata
from trailkeep.store.search_backfill import add_rollups

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

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


def upgrade() -> None:
    add_rollups(op.get_bind(), postgres_metadata, ROLLUPS)
    for name, table, columns in ROLLUP_INDEXES:
        op.create_index(name, table, list(columns))


def downgrade() -> None:
    for name, table, _columns in ROLLUP_INDEXES:
        op.drop_index(name, table)
    for spec in ROLLUPS:
        op.drop_table(spec.table)
