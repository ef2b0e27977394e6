"""The time index carries actor_type: ``actor.type:X`` is checked on the index alone.

A query on actor type walks the time index newest first and rejects the rows of other
types. With the type in the index, SQLite rejects them from the index entry and reads
only the matching rows from the table (a rare type, 1% of events, read 100 table rows
per match before). No new B-tree: ingest touches the same pages.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_time", "events")
    op.create_index("ix_events_time", "events", ["tenant_id", "occurred_at", "seq", "actor_type"])


def downgrade() -> None:
    op.drop_index("ix_events_time", "events")
    op.create_index("ix_events_time", "events", ["tenant_id", "occurred_at", "seq"])
