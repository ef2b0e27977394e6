"""Privacy: tenants' privacy settings, per-subject data keys, the tenant's index key
and per-subject event counts (store/migrations/privacy_tables.py).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from trailkeep.store.migrations import privacy_tables
from trailkeep.store.tables import postgres_metadata

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    privacy_tables.upgrade(postgres_metadata)


def downgrade() -> None:
    privacy_tables.downgrade()
