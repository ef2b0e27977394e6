"""Followers of the log: each one's position per tenant, and the events it skipped.

Full text and stats are kept by the indexer after commit from now on
(store/derived/indexer.py); its positions start at every tenant's log head.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from trailkeep.store.migrations import log_followers
from trailkeep.store.tables import sqlite_metadata

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    log_followers.upgrade(sqlite_metadata, postgres=False)


def downgrade() -> None:
    log_followers.downgrade()
