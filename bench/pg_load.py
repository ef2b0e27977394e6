"""PostgreSQL for the benchmarks (``--database-url postgresql://...``).

The URL names a database the benchmark may drop and re-create, so it refuses any name
that does not start with ``trailkeep_bench``. The database is (re)created through the
server's maintenance database (``postgres``, else ``template1``) and migrated with the
service's own migrations.

Preloads go in through the service's own ``insert_stored_rows`` (COPY into events, with
their full-text tsvectors, event_ids and event_targets, and the stats rollups) in
transactions of 20,000 events (made by a worker process meanwhile, bench/rowgen.py),
on a session with synchronous_commit=off, after the monthly partitions of their rows
exist; each transaction also upserts the tenants' Merkle tiles that its rows change
(bench/trees.py), as the service's writer does. Afterwards each tenant's counter in
tenant_seqs is set to its count, and the tables are vacuumed and analyzed and a
checkpoint is taken, so that the measurements start from settled tables (statistics
known, pages all-visible) instead of running into autovacuum and a checkpoint working
through the preload.

The raw baselines COPY the same kind of rows into the same tables with the same code,
one durable transaction (synchronous_commit=on) at a time on one connection: the bare
log (``insert_log_rows``: events with their tsvectors and all their indexes, event_ids,
event_targets, nothing derived, and the rows' Merkle tiles read and appended as the
writer does, load_frontiers + TreeAppender), and the old baseline
(``insert_stored_rows``: the log and its rollups, no tiles). tenant_seqs is set after
either, untimed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from common import LoadProgress, progress, service_settings, timed_transactions
from rowgen import LoadPlan, generate_rows
from trailkeep.store.derived.check import derived_problems
from trailkeep.store.migrations.runner import SchemaError, upgrade

# The service's own COPY code, so loaded rows are exactly what it would write.
from trailkeep.store.postgres.event_writes import (
    insert_log_rows,
    insert_stored_rows,
    load_frontiers,
)
from trailkeep.store.postgres.partitions import PartitionManager, month_of
from trailkeep.store.postgres.qmark import QmarkConnection
from trailkeep.store.stats.rollup_specs import ROLLUPS
from trailkeep.store.tree.tiles_sql import TreeAppender
from trailkeep.store.urls import parse_database_url
from trees import TreeLoader, leaves_by_tenant, ordered_leaves, root_of_leaves, tree_problems
from workload import EventFactory, EventRowT, TargetRowT, Txn

NAME_PREFIX = "trailkeep_bench"
MAINTENANCE_DATABASES = ("postgres", "template1")
# The stats rollups count what is in events: emptied and vacuumed with them.
EVENT_TABLES = ", ".join(["events", "event_ids", "event_targets", *(r.table for r in ROLLUPS)])
TREE_TABLES = "merkle_tiles, checkpoints"
# The followers' positions (the indexer's) and skips: emptied with the events, or a new
# phase's events would count as indexed up to the last phase's position.
FOLLOWER_TABLES = "log_positions, log_skips"
# Settings shown in the JSON summary (current_setting() of each).
REPORTED_SETTINGS = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
)
_META_TAG = "trailkeep bench metadata: "


def database_name(url: str) -> str:
    try:
        name = conninfo_to_dict(url).get("dbname")
    except psycopg.ProgrammingError as exc:
        raise SystemExit(f"error: --database-url: {exc}") from None
    return str(name or "")


@dataclass(frozen=True)
class PgDatabase:
    """A PostgreSQL database of the benchmark's own, dropped and re-created at will."""

    url: str
    name: str
    kind = "PostgreSQL"
    raw_write = "COPY"
    raw_settings = "synchronous_commit=on, one connection"
    log_tables = "events (with tsvector, all its indexes), event_ids, event_targets, merkle_tiles"

    @classmethod
    def from_url(cls, url: str) -> PgDatabase:
        """The database ``url`` names, provided its name marks it as the benchmark's."""
        name = database_name(url)
        if not name.startswith(NAME_PREFIX):
            raise SystemExit(
                f"error: --database-url names the database {name!r}; the benchmark drops and "
                f"re-creates the database it is given, so it only takes one whose name starts "
                f"with {NAME_PREFIX!r}, e.g. postgresql://postgres@127.0.0.1:5432/{NAME_PREFIX}"
            )
        return cls(url, name)

    @property
    def label(self) -> str:
        return parse_database_url(self.url).redacted

    def env(self) -> dict[str, str]:
        return {"TRAILKEEP_DATABASE_URL": self.url}

    # -- connections -------------------------------------------------------------------
    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=5, application_name="trailkeep-bench"
        )

    def _admin(self) -> psycopg.Connection[Any]:
        """A connection to the server's maintenance database, to create and drop ours."""
        failures = []
        for dbname in MAINTENANCE_DATABASES:
            try:
                return psycopg.connect(
                    make_conninfo(self.url, dbname=dbname), autocommit=True, connect_timeout=5
                )
            except psycopg.OperationalError as exc:
                failures.append(f"{dbname}: {str(exc).strip()}")
        raise SystemExit(
            f"error: cannot reach the PostgreSQL server of {self.label} to create the database "
            f"({'; '.join(failures)})"
        )

    # -- the database itself -------------------------------------------------------------
    def exists(self) -> bool:
        with self._admin() as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,))
            return found.fetchone() is not None

    def recreate(self) -> None:
        progress.print(f"dropping and re-creating {self.label}, then migrating it ...")
        ident = sql.Identifier(self.name)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        try:
            upgrade(parse_database_url(self.url))
        except SchemaError as exc:
            raise SystemExit(f"error: {exc}") from None

    def fresh_copy(self, work_dir: Path) -> PgDatabase:
        """This database, emptied of events and trees (tenants, keys and partitions stay).

        Then a CHECKPOINT, so that a phase does not pay for the writes of the one before.
        """
        with self.connect() as conn:
            with conn.transaction():
                conn.execute(f"TRUNCATE {EVENT_TABLES}, {TREE_TABLES}, {FOLLOWER_TABLES}")
                conn.execute("UPDATE tenant_seqs SET next_seq = 0")
            _checkpoint(conn)
        return self

    def describe(self) -> dict[str, Any]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                (list(REPORTED_SETTINGS),),
            ).fetchall()
        return {"backend": "postgresql", "database": self.label, **dict(rows)}

    def read_meta(self) -> dict[str, Any] | None:
        """Stored as the comment of the database (the service's schema stays as it is)."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                " WHERE datname = current_database()"
            ).fetchone()
        text = row[0] if row is not None else None
        if not text or not text.startswith(_META_TAG):
            return None
        meta: dict[str, Any] = orjson.loads(text[len(_META_TAG) :])
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        comment = _META_TAG + orjson.dumps(meta).decode()
        with self.connect() as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(self.name), sql.Literal(comment)
                )
            )

    # -- loading ---------------------------------------------------------------------------
    def bulk_load(self, plan: LoadPlan, factory: EventFactory, label: str) -> dict[str, Any]:
        """COPY ``plan`` in with the service's code; durability relaxed for this session."""
        partitions = PartitionManager(service_settings().pg_partitions_ahead_months)
        with self.connect() as conn:
            conn.execute("SET synchronous_commit = off")
            load = LoadProgress(label, plan.total)
            seqs = _next_seqs(conn, plan.counts)
            qmark = QmarkConnection(conn)
            tree = TreeLoader.open(qmark, dict(seqs), label)
            for events, targets in load.chunks(generate_rows(plan, factory, seqs)):
                partitions.ensure(conn, {month_of(row[3]) for row in events})
                with conn.transaction():
                    insert_stored_rows(conn, events, targets)
                    tree.write(qmark, events)
                load.advance(len(events))
            _set_counters(conn, seqs)
            settle_s = _settle(conn, label)
        return {**load.stats(), "settle_seconds": round(settle_s, 2)}

    def write_transactions(
        self, txns: Sequence[Txn], limit_s: float, derived: bool
    ) -> dict[str, Any]:
        """COPY with the service's code, one durable transaction each, one connection.

        Not timed: the partitions the rows need, the leaf hashes (like the rows, made
        before the clock starts), and setting tenant_seqs afterwards (the service
        advances it in each transaction; a raw COPY does not). The bare log (not
        ``derived``) reads each transaction's tree frontiers and appends the leaves in
        that transaction, as the writer does (store/postgres/event_writes.write_events).
        """
        partitions = PartitionManager(service_settings().pg_partitions_ahead_months)
        leaves = iter([leaves_by_tenant(events) for events, _ in txns] if not derived else [])
        with self.connect() as conn:
            conn.execute("SET synchronous_commit = on")
            partitions.ensure(conn, {month_of(row[3]) for events, _ in txns for row in events})
            qmark = QmarkConnection(conn)

            def write(events: list[EventRowT], targets: list[TargetRowT]) -> None:
                with conn.transaction():
                    if derived:
                        insert_stored_rows(conn, events, targets)
                        return
                    insert_log_rows(conn, events, targets)
                    hashes, first_seq = next(leaves)
                    loaded = load_frontiers(conn, first_seq)
                    TreeAppender(cache=False).append(qmark, hashes, first_seq, loaded)

            result = timed_transactions(txns, limit_s, write)
            written = txns[: result["transactions"]]
            _set_counters(conn, _after_last(row for events, _ in written for row in events))
        return result

    # -- reading back ------------------------------------------------------------------------
    def count_events(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row is not None else 0

    def next_seqs(self, tenant_ids: Iterable[str]) -> dict[str, int]:
        with self.connect() as conn:
            return _next_seqs(conn, tenant_ids)

    def tenant_counts(self) -> dict[str, int]:
        with self.connect() as conn:
            return self._counts(conn)

    def derived_problems(self, tenant_ids: Iterable[str]) -> list[str]:
        with self.connect() as conn:
            qmark = QmarkConnection(conn)
            problems = [
                f"{tenant}: {problem}"
                for tenant in tenant_ids
                for problem in derived_problems(qmark, True, tenant)
            ]
            row = conn.execute("SELECT count(*) FROM log_skips").fetchone()
            if row is not None and row[0]:
                problems.append(f"{row[0]} events skipped by a follower (log_skips)")
        return problems

    def _counts(self, conn: psycopg.Connection[Any]) -> dict[str, int]:
        rows = conn.execute("SELECT tenant_id, count(*) FROM event_ids GROUP BY tenant_id")
        return {tenant: int(n) for tenant, n in rows.fetchall()}

    def tree_problems(self) -> list[str]:
        with self.connect() as conn:
            return tree_problems(QmarkConnection(conn), self._counts(conn))

    def stored_roots(self, tenant_ids: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        out = {}
        with self.connect() as conn:
            counts = self._counts(conn)
            for tenant in tenant_ids:
                # A server-side cursor: the bodies stream by, unsorted, in batches.
                with conn.transaction(), conn.cursor(name="bench_bodies") as cur:
                    cur.itersize = 10_000
                    cur.execute("SELECT seq, body FROM events WHERE tenant_id = %s", (tenant,))
                    leaves = ordered_leaves(cur, counts.get(tenant, 0))
                out[tenant] = root_of_leaves(leaves)
        return out

    def tenant_bodies(self, tenant_id: str, batch: int = 10_000) -> Iterator[list[bytes]]:
        with self.connect() as conn, conn.transaction(), conn.cursor(name="bench_export") as cur:
            cur.execute("SELECT body FROM events WHERE tenant_id = %s", (tenant_id,))
            while rows := cur.fetchmany(batch):
                yield [bytes(r[0]) for r in rows]

    def integrity_rows(self) -> tuple[int, int]:
        with self.connect() as conn:
            tiles = conn.execute("SELECT count(*) FROM merkle_tiles").fetchone()
            checkpoints = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        assert tiles is not None and checkpoints is not None
        return int(tiles[0]), int(checkpoints[0])

    def event_ids(self, tenant_id: str, seqs: Iterable[int]) -> dict[int, str]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT seq, id FROM event_ids WHERE tenant_id = %s AND seq = ANY(%s)",
                (tenant_id, list(seqs)),
            ).fetchall()
        return {int(seq): str(ident) for seq, ident in rows}

    def gapless_problems(self) -> list[str]:
        """Also: every event has its event_ids row, and tenant_seqs holds the count."""
        with self.connect() as conn:
            rows = conn.execute(
                "WITH e AS (SELECT tenant_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi"
                "  FROM events GROUP BY tenant_id),"
                " i AS (SELECT tenant_id, count(*) AS n FROM event_ids GROUP BY tenant_id)"
                " SELECT tenant_id, coalesce(e.n, 0), e.lo, e.hi, coalesce(i.n, 0), s.next_seq"
                " FROM e FULL JOIN i USING (tenant_id) LEFT JOIN tenant_seqs s USING (tenant_id)"
                " ORDER BY tenant_id"
            ).fetchall()
        problems = []
        for tenant, n, lo, hi, ids, next_seq in rows:
            wrong = []
            if n and (lo != 0 or hi != n - 1):
                wrong.append(f"seq {lo}..{hi}")
            if ids != n:
                wrong.append(f"{ids} event_ids rows")
            if next_seq != n:
                wrong.append(f"tenant_seqs.next_seq {next_seq}")
            if wrong:
                problems.append(f"{tenant}: {n} events, " + ", ".join(wrong))
        return problems


def _next_seqs(conn: psycopg.Connection[Any], tenant_ids: Iterable[str]) -> dict[str, int]:
    """MAX(seq) + 1 per tenant, from event_ids' primary key (one index probe each)."""
    out = {}
    for tenant in tenant_ids:
        row = conn.execute(
            "SELECT max(seq) FROM event_ids WHERE tenant_id = %s", (tenant,)
        ).fetchone()
        out[tenant] = 0 if row is None or row[0] is None else int(row[0]) + 1
    return out


def _after_last(rows: Iterable[EventRowT]) -> dict[str, int]:
    """Per tenant, the seq after the highest among ``rows``."""
    out: dict[str, int] = {}
    for row in rows:
        out[row[0]] = max(out.get(row[0], 0), row[1] + 1)
    return out


def _set_counters(conn: psycopg.Connection[Any], next_seq: dict[str, int]) -> None:
    """What the service's writer keeps in tenant_seqs: each tenant's next seq."""
    if not next_seq:
        return
    conn.execute(
        "INSERT INTO tenant_seqs (tenant_id, next_seq)"
        " SELECT * FROM unnest(%s::text[], %s::int8[])"
        " ON CONFLICT (tenant_id) DO UPDATE SET next_seq = excluded.next_seq",
        (list(next_seq), list(next_seq.values())),
    )


def _settle(conn: psycopg.Connection[Any], label: str) -> float:
    """VACUUM (ANALYZE) and CHECKPOINT after a preload; returns the seconds taken."""
    progress.print(f"  {label}: VACUUM (ANALYZE) and CHECKPOINT ...")
    began = time.perf_counter()
    conn.execute(f"VACUUM (ANALYZE) {EVENT_TABLES}, {TREE_TABLES}, {FOLLOWER_TABLES}, tenant_seqs")
    _checkpoint(conn)
    seconds = time.perf_counter() - began
    progress.print(f"  {label}: settled in {seconds:.1f} s")
    return seconds


def _checkpoint(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute("CHECKPOINT")
    except pg_errors.InsufficientPrivilege:
        progress.print("  (no CHECKPOINT: this user may not run it; it will happen later)")
