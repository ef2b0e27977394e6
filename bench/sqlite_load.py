"""SQLite for the benchmarks (the default): files of their own, preloads and raw inserts
through the service's own INSERT code and connection pragmas, read-back checks.

A preload goes in through the service's own ``insert_stored_rows`` (rows, the FTS5
index, the stats rollups), in transactions of 20,000 events made by a worker process
meanwhile (bench/rowgen.py), and also writes each tenant's Merkle tiles (bench/trees.py)
in the transaction of each chunk, as the service's writer does.

The raw baselines: the bare log (``insert_log_rows``: events with all their indexes and
event_targets, nothing derived, and the rows' Merkle tiles appended with the service's
TreeAppender as its writer does), and the old baseline (``insert_stored_rows``: the log
and its derived rows, FTS5 and rollups, no tiles)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from common import LoadProgress, service_settings, timed_transactions
from rowgen import LoadPlan, generate_rows
from trailkeep.store.derived.check import derived_problems
from trailkeep.store.migrations.runner import upgrade
from trailkeep.store.sqlite.connection import open_connection

# The service's own insert code, so preloaded rows are exactly what it would write.
from trailkeep.store.sqlite.event_writes import insert_log_rows, insert_stored_rows
from trailkeep.store.tree.tiles_sql import TreeAppender
from trailkeep.store.urls import parse_database_url
from trees import TreeLoader, leaves_by_tenant, ordered_leaves, root_of_leaves, tree_problems
from workload import EventFactory, EventRowT, TargetRowT, Txn


def _next_seqs(conn: sqlite3.Connection, tenant_ids: Iterable[str]) -> dict[str, int]:
    out = {}
    for tenant in tenant_ids:
        row = conn.execute("SELECT MAX(seq) FROM events WHERE tenant_id = ?", (tenant,)).fetchone()
        out[tenant] = 0 if row[0] is None else int(row[0]) + 1
    return out


@dataclass(frozen=True)
class SqliteDatabase:
    """A SQLite file of the benchmark's own: the default."""

    path: Path
    kind = "SQLite"
    raw_write = "INSERT"
    log_tables = "events (all its indexes), event_targets, merkle_tiles"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path.resolve().as_posix()}"

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def raw_settings(self) -> str:
        return f"synchronous={service_settings().sqlite_synchronous} + WAL"

    def env(self) -> dict[str, str]:
        return {"TRAILKEEP_DATA_DIR": str(self.path.parent)}

    def exists(self) -> bool:
        return self.path.exists()

    def recreate(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        upgrade(parse_database_url(self.url))

    def fresh_copy(self, work_dir: Path) -> SqliteDatabase:
        copy = SqliteDatabase(work_dir / self.path.name)
        copy_database(self.path, copy.path)
        return copy

    def bulk_load(self, plan: LoadPlan, factory: EventFactory, label: str) -> dict[str, Any]:
        """Insert ``plan`` with the service's own INSERT statements, and the tenants' tiles.

        Durability is relaxed while loading (synchronous=OFF, big transactions): the file
        that results is the same as if the service had written it, only faster to make.
        """
        conn = open_connection(self.path, synchronous="OFF", cache_mb=1024)
        load = LoadProgress(label, plan.total)
        try:
            seqs = _next_seqs(conn, plan.counts)
            tree = TreeLoader.open(conn, dict(seqs), label)
            for events, targets in load.chunks(generate_rows(plan, factory, seqs)):
                conn.execute("BEGIN IMMEDIATE")
                insert_stored_rows(conn, events, targets)
                tree.write(conn, events)
                conn.execute("COMMIT")
                load.advance(len(events))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return load.stats()

    def write_transactions(
        self, txns: Sequence[Txn], limit_s: float, derived: bool
    ) -> dict[str, Any]:
        """The service's own INSERT code, through its open_connection and pragmas.

        The bare log (not ``derived``) also appends the rows' leaves to their tenants'
        trees with the writer's TreeAppender (frontiers cached, as on the writer); the
        leaf hashes are computed before the clock starts, like the rows.
        """
        settings = service_settings()
        conn = open_connection(
            self.path, synchronous=settings.sqlite_synchronous, cache_mb=settings.sqlite_cache_mb
        )
        tree = TreeAppender(cache=True)
        leaves = iter([leaves_by_tenant(events) for events, _ in txns] if not derived else [])

        def write(events: list[EventRowT], targets: list[TargetRowT]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            if derived:
                insert_stored_rows(conn, events, targets)
            else:
                insert_log_rows(conn, events, targets)
                hashes, first_seq = next(leaves)
                tree.append(conn, hashes, first_seq)
            conn.execute("COMMIT")

        try:
            return timed_transactions(txns, limit_s, write)
        finally:
            conn.close()

    def count_events(self) -> int:
        conn = open_connection(self.path, readonly=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            conn.close()

    def tenant_counts(self) -> dict[str, int]:
        conn = open_connection(self.path, readonly=True)
        try:
            return self._counts(conn)
        finally:
            conn.close()

    def derived_problems(self, tenant_ids: Iterable[str]) -> list[str]:
        conn = open_connection(self.path, readonly=True)
        try:
            problems = [
                f"{tenant}: {problem}"
                for tenant in tenant_ids
                for problem in derived_problems(conn, False, tenant)
            ]
            skips = conn.execute("SELECT COUNT(*) FROM log_skips").fetchone()[0]
            if skips:
                problems.append(f"{skips} events skipped by a follower (log_skips)")
            return problems
        finally:
            conn.close()

    def next_seqs(self, tenant_ids: Iterable[str]) -> dict[str, int]:
        conn = open_connection(self.path, readonly=True)
        try:
            return _next_seqs(conn, tenant_ids)
        finally:
            conn.close()

    def gapless_problems(self) -> list[str]:
        conn = open_connection(self.path, readonly=True)
        try:
            rows = conn.execute(
                "SELECT tenant_id, COUNT(*), MIN(seq), MAX(seq) FROM events GROUP BY tenant_id"
            ).fetchall()
        finally:
            conn.close()
        return [
            f"{t}: {n} events, seq {lo}..{hi}" for t, n, lo, hi in rows if lo != 0 or hi != n - 1
        ]

    def _counts(self, conn: sqlite3.Connection) -> dict[str, int]:
        rows = conn.execute("SELECT tenant_id, COUNT(*) FROM events GROUP BY tenant_id")
        return dict(rows.fetchall())

    def tree_problems(self) -> list[str]:
        conn = open_connection(self.path, readonly=True)
        try:
            return tree_problems(conn, self._counts(conn))
        finally:
            conn.close()

    def stored_roots(self, tenant_ids: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        conn = open_connection(self.path, readonly=True)
        try:
            counts = self._counts(conn)
            out = {}
            for tenant in tenant_ids:
                rows = conn.execute("SELECT seq, body FROM events WHERE tenant_id = ?", (tenant,))
                out[tenant] = root_of_leaves(ordered_leaves(rows, counts.get(tenant, 0)))
            return out
        finally:
            conn.close()

    def integrity_rows(self) -> tuple[int, int]:
        conn = open_connection(self.path, readonly=True)
        try:
            tiles = conn.execute("SELECT COUNT(*) FROM merkle_tiles").fetchone()[0]
            checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
            return int(tiles), int(checkpoints)
        finally:
            conn.close()

    def tenant_bodies(self, tenant_id: str, batch: int = 10_000) -> Iterator[list[bytes]]:
        conn = open_connection(self.path, readonly=True)
        try:
            cur = conn.execute("SELECT body FROM events WHERE tenant_id = ?", (tenant_id,))
            while rows := cur.fetchmany(batch):
                yield [bytes(r[0]) for r in rows]
        finally:
            conn.close()

    def event_ids(self, tenant_id: str, seqs: Iterable[int]) -> dict[int, str]:
        conn = open_connection(self.path, readonly=True)
        try:
            out = {}
            for seq in seqs:
                row = conn.execute(
                    "SELECT id FROM events WHERE tenant_id = ? AND seq = ?", (tenant_id, seq)
                ).fetchone()
                out[seq] = str(row[0])
            return out
        finally:
            conn.close()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "sqlite_version": sqlite3.sqlite_version,
            "synchronous": service_settings().sqlite_synchronous,
        }

    @property
    def _meta_path(self) -> Path:
        return self.path.with_name(self.path.name + ".meta.json")

    def read_meta(self) -> dict[str, Any] | None:
        path = self._meta_path
        meta: dict[str, Any] | None = orjson.loads(path.read_bytes()) if path.exists() else None
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        self._meta_path.write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))


def copy_database(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (backup API), WAL mode kept."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    source = sqlite3.connect(str(src))
    target = sqlite3.connect(str(dst))
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
