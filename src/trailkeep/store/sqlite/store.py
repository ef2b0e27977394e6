"""SqliteStore: the Store protocol over one SQLite file.

Writes go through the group-commit writer thread; reads run in worker threads, each
with its own read-only connection (WAL lets readers run beside the writer).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from anyio import to_thread

from trailkeep.errors import StoreUnavailable
from trailkeep.store import event_reads
from trailkeep.store.group_commit import GroupCommitWriter, WriterUnavailable
from trailkeep.store.migrate import SchemaError, check_schema
from trailkeep.store.schema import TENANT_DATA_TABLES
from trailkeep.store.shared_store import SharedSqlStore
from trailkeep.store.sqlite.checkpointer import Checkpointer
from trailkeep.store.sqlite.connection import open_connection
from trailkeep.store.sqlite.session import SqliteWriterSession
from trailkeep.store.urls import parse_database_url

T = TypeVar("T")
SQLITE = event_reads.ReadDialect(index_hints=True, partitioned=False)
READ_CONNECTIONS = 4


class SqliteStore(SharedSqlStore):
    dialect = SQLITE
    tenant_data_tables = TENANT_DATA_TABLES["sqlite"]

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
    ) -> None:
        self.path = path
        self._cache_mb = cache_mb
        self._writer = GroupCommitWriter(
            SqliteWriterSession(path, synchronous=synchronous, cache_mb=cache_mb, merkle=merkle),
            max_events=commit_max_events,
            max_wait_ms=commit_max_wait_ms,
            queue_max=queue_max,
        )
        # A few read connections, reused most-recently-first: each keeps a page cache,
        # and a handful of warm caches beat one cold cache per worker thread.
        self._checkpointer = Checkpointer(path, synchronous)
        self._idle_readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
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
        await to_thread.run_sync(self._writer.stop)
        await to_thread.run_sync(self._checkpointer.stop)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # -- plumbing ------------------------------------------------------------------
    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._reader_slots:
            try:
                conn = self._idle_readers.get_nowait()
            except queue.Empty:
                conn = open_connection(self.path, cache_mb=self._cache_mb, readonly=True)
                with self._readers_lock:
                    self._readers.append(conn)
            try:
                return fn(conn)
            finally:
                self._idle_readers.put(conn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await to_thread.run_sync(self._run_read, fn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database read failed: {exc}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._writer.call(fn)
        except WriterUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database write failed: {exc}") from exc
