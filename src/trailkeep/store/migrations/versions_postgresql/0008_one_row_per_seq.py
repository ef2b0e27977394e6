"""One row per seq and per id across every monthly partition of ``events``.

The partitioned primary key (tenant_id, occurred_at, seq) cannot say "one row per seq":
a second row with a taken seq and another occurred_at went in, and a page of events
then ended early. ``event_ids`` holds exactly one row per seq and one per id; each
events row now references its own (a deferred foreign key, checked at commit, because
the writer copies events before their ids).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_unique_constraint(
        "ux_event_ids_row", "event_ids", ["tenant_id", "seq", "occurred_at", "id"]
    )
    op.create_foreign_key(
        "fk_events_event_ids",
        "events",
        "event_ids",
        ["tenant_id", "seq", "occurred_at", "id"],
        ["tenant_id", "seq", "occurred_at", "id"],
        deferrable=True,
        initially="DEFERRED",
    )


def downgrade() -> None:
    op.drop_constraint("fk_events_event_ids", "events", type_="foreignkey")
    op.drop_constraint("ux_event_ids_row", "event_ids", type_="unique")
