"""More stats rollups: totals, actions, and 2 to 16-day actor buckets (store/stats/rollup_specs.py).

They are filled from the stored events; the daily actor and hourly
action rollups get an index by group.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from trailkeep.store.migrations import stats_families
from trailkeep.store.tables import sqlite_metadata

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stats_families.upgrade(sqlite_metadata)


def downgrade() -> None:
    stats_families.downgrade()
