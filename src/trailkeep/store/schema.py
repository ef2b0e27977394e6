"""Table definitions (SQLAlchemy Core), shared by every backend.

Every table that holds tenant data is keyed by ``tenant_id`` first and every index is
led by it, so one tenant's queries only ever touch that tenant's rows.
Times are integer microseconds since the epoch (UTC).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

SCHEMA_VERSION = 1

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("version", Integer, primary_key=True),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("display_name", String(256), nullable=False),
    Column("retention_days", Integer, nullable=True),
    Column("legal_hold", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    # NULL for platform admin keys.
    Column("tenant_id", String(64), nullable=True),
    Column("role", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Index("ix_api_keys_tenant", "tenant_id", "created_at"),
)

events = Table(
    "events",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("id", String(128), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("action", String(128), nullable=False),
    Column("actor_id", String(256), nullable=True),
    Column("actor_type", String(16), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("outcome", String(8), nullable=False),
    # Fingerprint of the client's request, to tell an idempotent retry from a conflict.
    Column("request_hash", LargeBinary(16), nullable=False),
    # The stored event as sorted-key JSON: exactly what GET /v1/events/{id} returns.
    Column("body", LargeBinary, nullable=False),
    PrimaryKeyConstraint("tenant_id", "seq", name="pk_events"),
    Index("ux_events_id", "tenant_id", "id", unique=True),
    Index("ix_events_time", "tenant_id", "occurred_at", "seq"),
    Index("ix_events_action", "tenant_id", "action", "occurred_at", "seq"),
    Index("ix_events_actor", "tenant_id", "actor_id", "occurred_at", "seq"),
    # Serves severity and outcome filters alike (see store/sqlite/event_reads.py).
    Index("ix_events_level", "tenant_id", "severity", "outcome", "occurred_at", "seq"),
    # Clustered by (tenant_id, seq): one tenant's log is stored in order, and no
    # separate primary-key index has to be maintained on every insert.
    sqlite_with_rowid=False,
)

event_targets = Table(
    "event_targets",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("target_type", String(128), nullable=False),
    Column("target_id", String(256), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    # The primary key is the lookup path "events touching this target, newest first";
    # the one index serves "events touching any target of this type".
    PrimaryKeyConstraint(
        "tenant_id", "target_type", "target_id", "occurred_at", "seq", name="pk_event_targets"
    ),
    Index("ix_targets_type", "tenant_id", "target_type", "occurred_at", "seq"),
    sqlite_with_rowid=False,
)
