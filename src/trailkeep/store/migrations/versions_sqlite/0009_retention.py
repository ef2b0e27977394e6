"""Retention: tombstones, runs, archive segments (store/migrations/retention_tables.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from trailkeep.store.migrations import retention_tables
from trailkeep.store.tables import sqlite_metadata

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    retention_tables.upgrade(sqlite_metadata)


def downgrade() -> None:
    retention_tables.downgrade()
