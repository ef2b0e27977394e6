"""The PostgreSQL writer session: the writer thread's own connection.

It reconnects by itself: after an outage the next group opens a new connection (each
attempt bounded by the connect timeout), so ingest resumes when the database returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import structlog

from trailkeep.store.models import AppendResult, EventDraft
from trailkeep.store.postgres.connect import PgOptions, connect, lost_connection, unavailable
from trailkeep.store.postgres.event_writes import write_events
from trailkeep.store.postgres.partitions import PartitionManager

T = TypeVar("T")
log = structlog.get_logger("trailkeep.writer")


class PgWriterSession:
    def __init__(
        self, options: PgOptions, partitions: PartitionManager, merkle: bool = True
    ) -> None:
        self._options = options
        self._merkle = merkle
        self._partitions = partitions
        self._conn: psycopg.Connection[Any] | None = None

    def open(self) -> None:
        self._connection()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
                log.info("writer reconnecting to PostgreSQL")
            self._conn = None
            self._conn = connect(self._options)
        return self._conn

    def write_events(self, drafts: list[EventDraft]) -> list[AppendResult]:
        conn = self._connection()
        try:
            self._partitions.ensure_for(conn, [d.occurred_at for d in drafts])
            with conn.transaction():
                return write_events(conn, drafts, self._merkle)
        except Exception:
            # A partition an operator dropped, or a connection that broke mid-way: look
            # again next time rather than trust what this process remembered.
            self._partitions.forget()
            raise

    def run(self, fn: Callable[[psycopg.Connection[Any]], T], changes_log: bool) -> T:
        conn = self._connection()  # nothing cached across transactions: changes_log is moot
        with conn.transaction():
            return fn(conn)

    def lost_connection(self, exc: BaseException) -> bool:
        return lost_connection(exc)

    def describe(self, exc: BaseException) -> str:
        # PostgreSQL's messages may quote row values; clients get the kind of failure.
        return unavailable(exc, "database write").message
