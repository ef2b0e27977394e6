"""Export jobs (store/migrations/export_tables.py).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from trailkeep.store.migrations import export_tables
from trailkeep.store.tables import postgres_metadata

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    export_tables.upgrade(postgres_metadata)


def downgrade() -> None:
    export_tables.downgrade()
