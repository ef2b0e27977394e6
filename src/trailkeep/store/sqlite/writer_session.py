"""The SQLite writer session: the writer thread's connection and its transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from trailkeep.store.models import AppendResult, EventDraft
from trailkeep.store.sqlite.connection import open_connection
from trailkeep.store.sqlite.event_writes import SeqCache, write_events
from trailkeep.store.tree.tiles_sql import TreeAppender

T = TypeVar("T")


class SqliteWriterSession:
    def __init__(self, path: Path, *, synchronous: str, cache_mb: int, merkle: bool = True) -> None:
        self._path = path
        self._synchronous = synchronous
        self._cache_mb = cache_mb
        self._seqs = SeqCache()
        self._tree = TreeAppender(cache=True)
        self._merkle = merkle
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        self._conn = open_connection(
            self._path, synchronous=self._synchronous, cache_mb=self._cache_mb
        )
        # Checkpoints run on their own thread (checkpointer.py), not inside our commits.
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Seqs and tree nodes of the failed transaction were not stored: forget them.
            self._seqs.clear()
            self._tree.clear()
            raise
        return result

    def write_events(self, drafts: list[EventDraft]) -> list[AppendResult]:
        return self._transaction(
            lambda conn: write_events(
                conn, self._seqs, self._tree if self._merkle else None, drafts
            )
        )

    def run(self, fn: Callable[[sqlite3.Connection], T], changes_log: bool) -> T:
        result = self._transaction(fn)
        if changes_log:  # e.g. a deleted tenant: its seqs start again from 0
            self._seqs.clear()
            self._tree.clear()
        return result

    def lost_connection(self, exc: BaseException) -> bool:
        return False  # an embedded database has no connection to lose

    def describe(self, exc: BaseException) -> str:
        return f"write failed: {exc}"  # SQLite's messages name no row data
