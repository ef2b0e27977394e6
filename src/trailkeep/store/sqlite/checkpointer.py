"""WAL checkpoints on a thread of their own.

By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages:
that commit then also copies the WAL into the database file and fsyncs it, and every
request waiting on it waits for that too (the long tail of ingest latency). Here the
writer's connection has automatic checkpoints off, and this thread runs PASSIVE
checkpoints, which never block the writer, from its own connection.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

from trailkeep.store.sqlite.connection import open_connection

log = structlog.get_logger("trailkeep.checkpoint")


class Checkpointer:
    def __init__(self, path: Path, synchronous: str, interval_s: float = 0.25) -> None:
        self._path = path
        self._synchronous = synchronous
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="trailkeep-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        conn = open_connection(self._path, synchronous=self._synchronous, cache_mb=8)
        try:
            while not self._stop.wait(self._interval):
                self._checkpoint(conn, "PASSIVE")
            # On a clean stop the WAL is folded in and emptied.
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:  # a failed checkpoint loses nothing; try again later
            log.warning("checkpoint failed", error=repr(exc), mode=mode)
