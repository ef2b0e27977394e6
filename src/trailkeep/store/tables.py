"""Table definitions (SQLAlchemy Core), one MetaData per backend.

Both backends hold the same data. Their layouts differ only where each database has a
better way:
- SQLite clusters events by ``(tenant_id, seq)`` (WITHOUT ROWID tables).
- PostgreSQL partitions events by month of ``occurred_at``. A unique key on a partitioned
  table must contain the partition key, so ``event_ids`` (not partitioned) holds the
  ``(tenant_id, id)`` and ``(tenant_id, seq)`` keys. ``tenant_seqs`` holds each tenant's
  next seq, whose row lock serializes writers of one tenant across processes.

Every table that holds tenant data is keyed by ``tenant_id`` first and every index is
led by it, so one tenant's queries only ever touch that tenant's rows.
Times are integer microseconds since the epoch (UTC). The Alembic migrations in
``store/migrations`` create exactly these tables; a test compares them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from trailkeep.store.stats.rollup_specs import ROLLUP_INDEXES, ROLLUPS
from trailkeep.store.urls import Backend

# PostgreSQL compares text by the database's locale unless told otherwise; the range
# conditions of prefix filters (``action >= 'user.' AND action < 'user/'``) need the
# byte order that SQLite uses. "C" is that order, and the fastest to compare.
_PG_TEXT_COLLATION = "C"


def _text(backend: Backend, length: int) -> String:
    return String(length, collation=_PG_TEXT_COLLATION if backend == "postgresql" else None)


def _define(backend: Backend) -> MetaData:
    md = MetaData()
    pg = backend == "postgresql"
    partitioned: dict[str, Any] = {"postgresql_partition_by": "RANGE (occurred_at)"} if pg else {}
    clustered: dict[str, Any] = {} if pg else {"sqlite_with_rowid": False}
    # SQLite's events need a unique id index and a time index; on PostgreSQL event_ids
    # holds the ids and the primary key is the time index.
    sqlite_only: list[Index] = (
        []
        if pg
        else [
            Index("ux_events_id", "tenant_id", "id", unique=True),
            # actor_type: rows of other types are rejected from the index entry
            # (store/reads/pages.py, migration 0005).
            Index("ix_events_time", "tenant_id", "occurred_at", "seq", "actor_type"),
        ]
    )

    # PostgreSQL cannot index (tenant_id, seq) across monthly partitions, so each row
    # must match its event_ids row (one per seq and one per id; migration 0008): a second
    # row with a taken seq or id is refused at commit (deferred: events are copied first).
    seq_unique: list[Any] = (
        [
            ForeignKeyConstraint(
                ["tenant_id", "seq", "occurred_at", "id"],
                ["event_ids.tenant_id", "event_ids.seq", "event_ids.occurred_at", "event_ids.id"],
                name="fk_events_event_ids",
                deferrable=True,
                initially="DEFERRED",
            )
        ]
        if pg
        else []
    )

    # SQLite: a small number per tenant, the high bits of its full-text rowids
    # (store/reads/fulltext.py); PostgreSQL keeps its full-text index in events.
    tenant_num: list[Any] = (
        []
        if pg
        else [Column("num", Integer, nullable=True), Index("ux_tenants_num", "num", unique=True)]
    )
    Table(
        "tenants",
        md,
        Column("id", _text(backend, 64), primary_key=True),
        Column("display_name", String(256), nullable=False),
        Column("retention_days", Integer, nullable=True),
        Column("legal_hold", Boolean, nullable=False, default=False),
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
        *tenant_num,
        # The tenant's privacy settings as JSON (NULL: the defaults); migration 0007 on
        # SQLite, 0006 on PostgreSQL, after ``num``.
        Column("privacy", Text, nullable=True),
        # The retention policy (JSON; NULL: retention_days alone) and who set the legal
        # hold, when and why (JSON); migration 0009 on both backends.
        Column("retention", Text, nullable=True),
        Column("legal_hold_info", Text, nullable=True),
    )
    Table(
        "api_keys",
        md,
        Column("id", _text(backend, 32), primary_key=True),
        # NULL for platform admin keys.
        Column("tenant_id", _text(backend, 64), nullable=True),
        Column("role", String(32), nullable=False),
        Column("name", String(256), nullable=False),
        Column("secret_hash", LargeBinary(32), nullable=False),
        Column("created_at", BigInteger, nullable=False),
        Column("revoked_at", BigInteger, nullable=True),
        Column("last_used_at", BigInteger, nullable=True),
        Index("ix_api_keys_tenant", "tenant_id", "created_at"),
    )
    # The leading columns of the events key: SQLite's clustered (tenant, seq); on
    # PostgreSQL the partition key must be part of it, and (tenant, occurred_at, seq)
    # is also the "newest first" index.
    events_key = ("tenant_id", "occurred_at", "seq") if pg else ("tenant_id", "seq")
    # PostgreSQL's full-text index: kit/fulltext.py's tokens as a tsvector, GIN-indexed.
    # SQLite's is the FTS5 table events_fts, made by the migration (not a Core table).
    search_column: list[Any] = (
        [
            Column("search", TSVECTOR, nullable=True),
            Index("ix_events_search", "search", postgresql_using="gin"),
        ]
        if pg
        else []
    )
    Table(
        "events",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("id", _text(backend, 128), nullable=False),
        Column("occurred_at", BigInteger, nullable=False),
        Column("received_at", BigInteger, nullable=False),
        Column("action", _text(backend, 128), nullable=False),
        Column("actor_id", _text(backend, 256), nullable=True),
        Column("actor_type", String(16), nullable=False),
        Column("severity", Integer, nullable=False),
        Column("outcome", String(8), nullable=False),
        # Fingerprint of the client's request, to tell an idempotent retry from a conflict.
        Column("request_hash", LargeBinary(16), nullable=False),
        # The stored event as RFC 8785 (JCS) JSON: exactly what GET /v1/events/{id}
        # returns, and exactly the bytes its Merkle leaf hashes.
        Column("body", LargeBinary, nullable=False),
        *search_column,
        PrimaryKeyConstraint(*events_key, name="pk_events"),
        *sqlite_only,
        *seq_unique,
        Index("ix_events_action", "tenant_id", "action", "occurred_at", "seq"),
        Index("ix_events_actor", "tenant_id", "actor_id", "occurred_at", "seq"),
        # Serves severity and outcome filters alike (see store/reads/pages.py).
        Index("ix_events_level", "tenant_id", "severity", "outcome", "occurred_at", "seq"),
        **partitioned,
        **clustered,
    )
    Table(
        "event_targets",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("target_type", _text(backend, 128), nullable=False),
        Column("target_id", _text(backend, 256), nullable=False),
        Column("occurred_at", BigInteger, nullable=False),
        # The primary key is the lookup path "events touching this target, newest first";
        # the one index serves "events touching any target of this type".
        PrimaryKeyConstraint(
            "tenant_id", "target_type", "target_id", "occurred_at", "seq", name="pk_event_targets"
        ),
        Index("ix_targets_type", "tenant_id", "target_type", "occurred_at", "seq"),
        **partitioned,
        **clustered,
    )
    # The tenant's Merkle tree as C2SP tlog-tiles (kit/tiles.py): one row per tile, up to
    # 256 hashes of tree level 8 * level; partial tiles are rewritten as they grow.
    Table(
        "merkle_tiles",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("level", Integer, nullable=False),
        Column("idx", BigInteger, nullable=False),
        Column("hashes", LargeBinary, nullable=False),
        PrimaryKeyConstraint("tenant_id", "level", "idx", name="pk_merkle_tiles"),
        **clustered,
    )
    # Every signed checkpoint, kept forever; not deleted with the tenant, so that a
    # deleted tenant's id (its log's origin) is never given to a new log.
    Table(
        "checkpoints",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("root_hash", LargeBinary(32), nullable=False),
        Column("note", Text, nullable=False),
        Column("signed_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("tenant_id", "size", name="pk_checkpoints"),
        **clustered,
    )
    _rollups(md, backend)
    _followers(md, backend)
    _privacy(md, backend)
    _export_jobs(md, backend)
    _retention(md, backend)
    if pg:
        Table(
            "event_ids",
            md,
            Column("tenant_id", _text(backend, 64), nullable=False),
            Column("seq", BigInteger, nullable=False),
            Column("id", _text(backend, 128), nullable=False),
            # Locates the event's partition.
            Column("occurred_at", BigInteger, nullable=False),
            PrimaryKeyConstraint("tenant_id", "seq", name="pk_event_ids"),
            UniqueConstraint("tenant_id", "id", name="ux_event_ids_id"),
            # What each events row references (below): one row per seq and per id.
            UniqueConstraint("tenant_id", "seq", "occurred_at", "id", name="ux_event_ids_row"),
        )
        Table(
            "tenant_seqs",
            md,
            Column("tenant_id", _text(backend, 64), primary_key=True),
            Column("next_seq", BigInteger, nullable=False),
        )
    return md


def _rollups(md: MetaData, backend: Backend) -> None:
    """Event counts per tenant, time bucket and dimensions, kept at ingest (rollups.py)."""
    clustered: dict[str, Any] = {} if backend == "postgresql" else {"sqlite_with_rowid": False}
    for spec in ROLLUPS:
        dims = [Column(d, _ROLLUP_TYPES[d](backend), nullable=False) for d in spec.dims]
        Table(
            spec.table,
            md,
            Column("tenant_id", _text(backend, 64), nullable=False),
            Column("bucket", BigInteger, nullable=False),
            *dims,
            Column("n", BigInteger, nullable=False),
            PrimaryKeyConstraint("tenant_id", "bucket", *spec.dims, name=f"pk_{spec.table}"),
            **clustered,
        )
    for name, table, columns in ROLLUP_INDEXES:
        Index(name, *(md.tables[table].c[c] for c in columns))


def _followers(md: MetaData, backend: Backend) -> None:
    """Where each follower of the log stands per tenant (store/log/follower.py), and the
    events it passed over as poison (migration 0006 on SQLite, 0005 on PostgreSQL)."""
    clustered: dict[str, Any] = {} if backend == "postgresql" else {"sqlite_with_rowid": False}
    Table(
        "log_positions",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("follower", _text(backend, 64), nullable=False),
        # Every event of the tenant below this seq has been applied by the follower.
        Column("next_seq", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("tenant_id", "follower", name="pk_log_positions"),
        **clustered,
    )
    Table(
        "log_skips",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("follower", _text(backend, 64), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("error", Text, nullable=False),
        Column("skipped_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("tenant_id", "follower", "seq", name="pk_log_skips"),
        **clustered,
    )


def _privacy(md: MetaData, backend: Backend) -> None:
    """Per-subject data keys, the tenant's index key and per-subject event counts
    (store/privacy/keys_sql.py; migration 0007 on SQLite, 0006 on PostgreSQL)."""
    clustered: dict[str, Any] = {} if backend == "postgresql" else {"sqlite_with_rowid": False}
    # Only the live keys: an erased key keeps its row (what was erased, when, by whom),
    # and the subject may then get a new one, its next generation.
    live = text("erased_at IS NULL")
    Table(
        "subject_keys",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("key_id", _text(backend, 64), nullable=False),
        Column("subject_id", _text(backend, 256), nullable=False),
        # The subject's data key wrapped by the tenant's KEK; NULL once erased.
        Column("wrapped", LargeBinary, nullable=True),
        Column("created_at", BigInteger, nullable=False),
        Column("erased_at", BigInteger, nullable=True),
        Column("erased_by", String(256), nullable=True),
        PrimaryKeyConstraint("tenant_id", "key_id", name="pk_subject_keys"),
        # At most one live key per subject: the arbiter of concurrent first writes
        # (ON CONFLICT ... WHERE erased_at IS NULL DO NOTHING), so racers agree on one.
        Index(
            "ux_subject_keys_live",
            "tenant_id",
            "subject_id",
            unique=True,
            sqlite_where=live,
            postgresql_where=live,
        ),
        Index("ix_subject_keys_subject", "tenant_id", "subject_id", "created_at"),
        **clustered,
    )
    Table(
        "tenant_keys",
        md,
        Column("tenant_id", _text(backend, 64), primary_key=True),
        # The key of the tenant's blind indexes, wrapped by its KEK.
        Column("wrapped", LargeBinary, nullable=False),
        Column("created_at", BigInteger, nullable=False),
        **clustered,
    )
    # Events per subject, counted by the indexer after commit (store/privacy/subject_counts.py).
    Table(
        "subject_stats",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("subject_id", _text(backend, 256), nullable=False),
        Column("events", BigInteger, nullable=False),
        Column("first_seq", BigInteger, nullable=False),
        Column("last_seq", BigInteger, nullable=False),
        # Earliest and latest occurred_at of the subject's events (µs).
        Column("first_at", BigInteger, nullable=False),
        Column("last_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("tenant_id", "subject_id", name="pk_subject_stats"),
        **clustered,
    )


def _export_jobs(md: MetaData, backend: Backend) -> None:
    """Export jobs: what was asked, by whom, how far it got, where the result is
    (store/exports/jobs_sql.py; migration 0008 on SQLite, 0007 on PostgreSQL)."""
    clustered: dict[str, Any] = {} if backend == "postgresql" else {"sqlite_with_rowid": False}
    Table(
        "export_jobs",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("id", _text(backend, 64), nullable=False),
        # queued | running | done | failed | cancelled
        Column("state", String(16), nullable=False),
        Column("request", Text, nullable=False),  # the job's parameters, JSON
        Column("created_by", _text(backend, 256), nullable=False),
        Column("created_at", BigInteger, nullable=False),
        Column("started_at", BigInteger, nullable=True),
        Column("finished_at", BigInteger, nullable=True),
        # The worker holding the job, until when (µs): a job whose lease ran out (its
        # worker crashed) is taken over by the next worker that looks.
        Column("lease_owner", String(64), nullable=True),
        Column("lease_until", BigInteger, nullable=True),
        Column("attempts", Integer, nullable=False),
        Column("written", BigInteger, nullable=False),
        Column("total", BigInteger, nullable=True),
        Column("error", Text, nullable=True),
        Column("result", Text, nullable=True),  # files, sizes, location: JSON
        PrimaryKeyConstraint("tenant_id", "id", name="pk_export_jobs"),
        # Tenant first like every index (the table may be distributed by tenant); the
        # claim's scan over all tenants reads this small table whole.
        Index("ix_export_jobs_state", "tenant_id", "state", "created_at"),
        Index("ix_export_jobs_list", "tenant_id", "created_at", "id"),
        **clustered,
    )


def _retention(md: MetaData, backend: Backend) -> None:
    """Tombstones of pruned events, retention runs and archive segments
    (store/retention/; migration 0009 on both backends)."""
    clustered: dict[str, Any] = {} if backend == "postgresql" else {"sqlite_with_rowid": False}
    # One row per pruned event: its id stays taken (idempotency) and its seq answers
    # with a tombstone; the leaf hash itself stays in merkle_tiles.
    Table(
        "pruned_events",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("id", _text(backend, 128), nullable=False),
        Column("pruned_at", BigInteger, nullable=False),
        Column("rule", String(160), nullable=False),  # "severity:DEBUG=7d"
        Column("segment", _text(backend, 64), nullable=True),  # its archive, if any
        PrimaryKeyConstraint("tenant_id", "seq", name="pk_pruned_events"),
        Index("ux_pruned_events_id", "tenant_id", "id", unique=True),
        **clustered,
    )
    running = text("state = 'running'")
    Table(
        "retention_runs",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("id", _text(backend, 64), nullable=False),
        Column("state", String(16), nullable=False),  # running | done | failed
        Column("requested_by", _text(backend, 256), nullable=False),
        Column("created_at", BigInteger, nullable=False),
        Column("finished_at", BigInteger, nullable=True),
        # The process running it, until when (µs): a run whose lease ran out (its
        # process died) is marked failed by the next run, which finishes its work.
        Column("lease_owner", String(64), nullable=True),
        Column("lease_until", BigInteger, nullable=True),
        Column("report", Text, nullable=True),  # JSON: counts per rule, segments
        Column("error", Text, nullable=True),
        PrimaryKeyConstraint("tenant_id", "id", name="pk_retention_runs"),
        # At most one running run per tenant, across every process.
        Index(
            "ux_retention_runs_running",
            "tenant_id",
            unique=True,
            sqlite_where=running,
            postgresql_where=running,
        ),
        Index("ix_retention_runs_list", "tenant_id", "created_at", "id"),
        **clustered,
    )
    Table(
        "archive_segments",
        md,
        Column("tenant_id", _text(backend, 64), nullable=False),
        Column("id", _text(backend, 64), nullable=False),
        Column("run_id", _text(backend, 64), nullable=False),
        # archived: written and checked, rows not yet all deleted; pruned: done;
        # restored: its events are back in the hot store.
        Column("state", String(16), nullable=False),
        Column("from_seq", BigInteger, nullable=False),
        Column("to_seq", BigInteger, nullable=False),
        Column("rows", BigInteger, nullable=False),
        Column("destination", String(16), nullable=False),
        Column("location", Text, nullable=False),  # the segment's folder in the store
        Column("manifest", Text, nullable=False),  # the segment's manifest, JSON
        Column("created_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("tenant_id", "id", name="pk_archive_segments"),
        Index("ix_archive_segments_seq", "tenant_id", "from_seq"),
        **clustered,
    )


_ROLLUP_TYPES: dict[str, Any] = {
    "action": lambda b: _text(b, 128),
    "severity": lambda b: Integer(),
    "outcome": lambda b: String(8),
    "actor_id": lambda b: _text(b, 256),
    "target_type": lambda b: _text(b, 128),
}


sqlite_metadata = _define("sqlite")
postgres_metadata = _define("postgresql")

# Tables holding a tenant's data, in the order a tenant deletion empties them.
TENANT_DATA_TABLES: dict[Backend, tuple[str, ...]] = {
    "sqlite": (
        "api_keys",
        "event_targets",
        "events",
        "merkle_tiles",
        *(spec.table for spec in ROLLUPS),
        "log_positions",
        "log_skips",
        "tenant_keys",
        "subject_keys",
        "subject_stats",
        "export_jobs",
        "pruned_events",
        "retention_runs",
        "archive_segments",
    ),
    "postgresql": (
        *(spec.table for spec in ROLLUPS),
        "log_positions",
        "log_skips",
        "api_keys",
        "event_targets",
        "event_ids",
        "events",
        "merkle_tiles",
        "tenant_seqs",
        "tenant_keys",
        "subject_keys",
        "subject_stats",
        "export_jobs",
        "pruned_events",
        "retention_runs",
        "archive_segments",
    ),
}


def metadata_for(backend: Backend) -> MetaData:
    return postgres_metadata if backend == "postgresql" else sqlite_metadata
