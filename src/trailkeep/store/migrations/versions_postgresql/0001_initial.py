"""Initial PostgreSQL schema: events and targets partitioned by month of occurred_at.

Partitions themselves are created by the running service (store/postgres/partitions.py),
ahead of time and on demand, not by migrations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def text(length: int) -> sa.String:
    # Byte-order comparisons: prefix filters rely on them (see store/tables.py).
    return sa.String(length, collation="C")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", text(64), primary_key=True),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("legal_hold", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", text(32), primary_key=True),
        sa.Column("tenant_id", text(64), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id", "created_at"])
    op.create_table(
        "events",
        sa.Column("tenant_id", text(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("id", text(128), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("action", text(128), nullable=False),
        sa.Column("actor_id", text(256), nullable=True),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(16), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "occurred_at", "seq", name="pk_events"),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    op.create_index("ix_events_action", "events", ["tenant_id", "action", "occurred_at", "seq"])
    op.create_index("ix_events_actor", "events", ["tenant_id", "actor_id", "occurred_at", "seq"])
    op.create_index(
        "ix_events_level", "events", ["tenant_id", "severity", "outcome", "occurred_at", "seq"]
    )
    op.create_table(
        "event_targets",
        sa.Column("tenant_id", text(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("target_type", text(128), nullable=False),
        sa.Column("target_id", text(256), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "target_type", "target_id", "occurred_at", "seq", name="pk_event_targets"
        ),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    op.create_index(
        "ix_targets_type", "event_targets", ["tenant_id", "target_type", "occurred_at", "seq"]
    )
    op.create_table(
        "event_ids",
        sa.Column("tenant_id", text(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("id", text(128), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name="pk_event_ids"),
        sa.UniqueConstraint("tenant_id", "id", name="ux_event_ids_id"),
    )
    op.create_table(
        "tenant_seqs",
        sa.Column("tenant_id", text(64), primary_key=True),
        sa.Column("next_seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("tenant_seqs", "event_ids", "event_targets", "events", "api_keys", "tenants"):
        op.drop_table(table)
