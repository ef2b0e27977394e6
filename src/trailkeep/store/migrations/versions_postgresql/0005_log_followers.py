"""Followers of the log: each one's position per tenant, and the events it skipped.

Full text and stats are kept by the indexer after commit from now on
(store/derived/indexer.py); its positions start at every tenant's log head.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from trailkeep.store.migrations import log_followers
from trailkeep.store.tables import postgres_metadata

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    log_followers.upgrade(postgres_metadata, postgres=True)


def downgrade() -> None:
    log_followers.downgrade()
