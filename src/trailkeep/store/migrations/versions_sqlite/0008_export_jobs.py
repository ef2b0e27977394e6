"""Export jobs (store/migrations/export_tables.py).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from trailkeep.store.migrations import export_tables
from trailkeep.store.tables import sqlite_metadata

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    export_tables.upgrade(sqlite_metadata)


def downgrade() -> None:
    export_tables.downgrade()
