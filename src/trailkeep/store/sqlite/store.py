"""SqliteStore: the Store protocol over one SQLite file.

Writes go through the group-commit writer thread; reads run in worker threads, each
with its own read-only connection (WAL lets readers run beside the writer).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
from anyio import to_thread

from trailkeep.errors import QueryTimeout, StoreUnavailable
from trailkeep.query.filter import EventFilter
from trailkeep.store.accounts import tenants_and_keys
from trailkeep.store.connection import SqlConnection
from trailkeep.store.derived.indexer import DerivedIndexer
from trailkeep.store.fulltext.index_rows import TENANT_SHIFT, insert_sqlite_text
from trailkeep.store.fulltext.text_pool import TextPool
from trailkeep.store.fulltext.text_worker import text_of
from trailkeep.store.log.group_commit import GroupCommitWriter, WriterUnavailable
from trailkeep.store.migrations.runner import SchemaError, check_schema
from trailkeep.store.models import TenantRecord
from trailkeep.store.reads import pages, seq_range
from trailkeep.store.reads.conditions import SQLITE_IP_FUNCTION, sqlite_ip_in
from trailkeep.store.sql_store import SharedSqlStore
from trailkeep.store.sqlite.checkpointer import Checkpointer
from trailkeep.store.sqlite.connection import open_connection
from trailkeep.store.sqlite.event_writes import insert_log_rows
from trailkeep.store.sqlite.writer_session import SqliteWriterSession
from trailkeep.store.tables import TENANT_DATA_TABLES
from trailkeep.store.urls import parse_database_url

T = TypeVar("T")
SQLITE = pages.ReadDialect(index_hints=True, partitioned=False)
READ_CONNECTIONS = 4
RECLAIM_PAGES = 1024  # 4 MiB of 4 KiB pages per step of reclaim_space


class SqliteStore(SharedSqlStore):
    dialect = SQLITE
    tenant_data_tables = TENANT_DATA_TABLES["sqlite"]
    postgres = False

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        cache_mb: int = 64,
        commit_max_events: int = 5000,
        commit_max_wait_ms: float = 0.0,
        queue_max: int = 50_000,
        merkle: bool = True,
        read_timeout_ms: int = 5_000,
        index_processes: int = 1,
    ) -> None:
        self.path = path
        self._read_timeout_s = read_timeout_ms / 1000
        self._cache_mb = cache_mb
        self._writer = GroupCommitWriter(
            SqliteWriterSession(path, synchronous=synchronous, cache_mb=cache_mb, merkle=merkle),
            max_events=commit_max_events,
            max_wait_ms=commit_max_wait_ms,
            queue_max=queue_max,
        )
        self._writers = [self._writer]
        self._texts = TextPool(path, index_processes)
        self._follow_with(DerivedIndexer(postgres=False, texts=self._texts))
        # A few read connections, reused most-recently-first: each keeps a page cache,
        # and a handful of warm caches beat one cold cache per worker thread.
        self._checkpointer = Checkpointer(path, synchronous)
        self._idle_readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Whole-log scans (exports, the integrity scrub) read through one connection of
        # their own: a small page cache and no mmap, so a pass over a large database
        # neither evicts the hot pages of the query connections nor maps the whole file
        # into the server's resident memory.
        self._bulk: sqlite3.Connection | None = None
        self._bulk_lock = threading.Lock()
        self._reader_slots = threading.BoundedSemaphore(READ_CONNECTIONS)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        db = parse_database_url(f"sqlite:///{self.path.as_posix()}")
        try:
            await to_thread.run_sync(check_schema, db)
        except SchemaError as exc:
            raise StoreUnavailable(str(exc)) from None
        self._writer.start()
        self._checkpointer.start()

    async def close(self) -> None:
        await self._stop_following()
        self._texts.close()
        await to_thread.run_sync(self._writer.stop)
        await to_thread.run_sync(self._checkpointer.stop)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._bulk_lock:
            if self._bulk is not None:
                self._bulk.close()
                self._bulk = None

    # -- plumbing ------------------------------------------------------------------
    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._reader_slots:
            try:
                conn = self._idle_readers.get_nowait()
            except queue.Empty:
                conn = open_connection(self.path, cache_mb=self._cache_mb, readonly=True)
                conn.create_function(SQLITE_IP_FUNCTION, -1, sqlite_ip_in, deterministic=True)
                with self._readers_lock:
                    self._readers.append(conn)
            # SQLite has no statement timeout: a progress handler stops a read that
            # runs past the deadline (checked every few thousand VM steps).
            deadline = time.monotonic() + self._read_timeout_s
            conn.set_progress_handler(lambda: time.monotonic() > deadline, 20_000)
            try:
                return fn(conn)
            except sqlite3.OperationalError as exc:
                if str(exc) != "interrupted":
                    raise
                raise QueryTimeout(
                    f"the query ran longer than {round(self._read_timeout_s * 1000)} ms and"
                    " was stopped: narrow it with an indexed field (action, actor.id, target)"
                    " or a time range"
                ) from None
            finally:
                conn.set_progress_handler(None, 0)
                self._idle_readers.put(conn)

    def _run_bulk(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._bulk_lock:
            if self._bulk is None:
                conn = open_connection(self.path, cache_mb=8, readonly=True, mmap=False)
                conn.create_function(SQLITE_IP_FUNCTION, -1, sqlite_ip_in, deterministic=True)
                self._bulk = conn
            return fn(self._bulk)

    async def events_in_seq_range(
        self, flt: EventFilter, from_seq: int, to_seq: int, limit: int
    ) -> tuple[list[tuple[int, bytes]], int]:
        dialect = self.dialect

        def read(conn: sqlite3.Connection) -> tuple[list[tuple[int, bytes]], int]:
            return seq_range.events_in_seq_range(conn, dialect, flt, from_seq, to_seq, limit)

        try:
            return await to_thread.run_sync(self._run_bulk, read)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database read failed: {exc}") from exc

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await to_thread.run_sync(self._run_read, fn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database read failed: {exc}") from exc

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], *, changes_log: bool = False
    ) -> T:
        try:
            return await self._writer.call(fn, changes_log=changes_log)
        except WriterUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database write failed: {exc}") from exc

    # -- tenants -------------------------------------------------------------------
    async def reclaim_space(self) -> int:
        """Incremental vacuum in steps of RECLAIM_PAGES through the writer, so ingest
        waits for one step at most. Databases made before auto_vacuum was set reuse the
        freed pages for new events instead (docs/retention.md)."""
        freed = 0
        while True:

            def step(conn: sqlite3.Connection) -> int:
                mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
                before = conn.execute("PRAGMA freelist_count").fetchone()[0]
                if mode != 2 or not before:  # 2: INCREMENTAL
                    return 0
                # Python's sqlite3 steps a statement once, and each step of this pragma
                # frees one page: one statement per page (about 8 µs each).
                cur = conn.cursor()
                for _ in range(min(before, RECLAIM_PAGES)):
                    cur.execute("PRAGMA incremental_vacuum(1)")
                cur.close()
                return int(before - conn.execute("PRAGMA freelist_count").fetchone()[0])

            done = await self._write(step)
            freed += done
            if done < RECLAIM_PAGES:
                return freed

    def _insert_restored(
        self, conn: Any, events: Sequence[tuple[Any, ...]], targets: Sequence[tuple[Any, ...]]
    ) -> None:
        """The log rows and their full-text rows (the indexer passed these seqs long ago)."""
        insert_log_rows(conn, events, targets)
        insert_sqlite_text(conn, [(r[0], r[1], text_of(orjson.loads(r[11]))) for r in events])

    def _insert_tenant(self, conn: SqlConnection, record: TenantRecord) -> bool:
        created = tenants_and_keys.insert_tenant(conn, record)
        if created:
            # The high bits of the tenant's full-text rowids (store/fulltext/index_rows.py).
            conn.execute(
                "UPDATE tenants SET num = (SELECT COALESCE(MAX(num), 0) + 1 FROM tenants)"
                " WHERE id = ?",
                (record.id,),
            )
        return created

    async def delete_tenant(self, tenant_id: str) -> bool:
        tables = self.tenant_data_tables

        def delete(conn: SqlConnection) -> bool:
            row = conn.execute("SELECT num FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
            if row is not None and row[0] is not None:
                base = row[0] << TENANT_SHIFT
                conn.execute(
                    "DELETE FROM events_fts WHERE rowid >= ? AND rowid < ?",
                    (base, base + (1 << TENANT_SHIFT)),
                )
            return tenants_and_keys.delete_tenant(conn, tenant_id, tables)

        return await self._write(delete, changes_log=True)
