"""Monthly partitions of events and event_targets: created ahead, and on demand.

The writer makes sure the partition of every month it is about to write exists before
it opens its transaction, so an event for an old month (a late import) lands in a
partition of its own month instead of failing. Partitions of the coming months are
created ahead, so the common case never creates one under load. Two processes may race
to create the same partition: an advisory lock makes the second one a no-op.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

PARTITIONED_TABLES = ("events", "event_targets")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCK_KEY = 0x7472_6B70  # arbitrary constant, shared by every Trailkeep process
_NAME = re.compile(r"^events_p(\d{4})(\d{2})$")
_RECHECK_AHEAD_S = 3600.0


def month_of(occurred_at_us: int) -> int:
    """A month as one integer (year * 12 + month - 1) for a time in microseconds."""
    moment = _EPOCH + timedelta(microseconds=occurred_at_us)
    return moment.year * 12 + moment.month - 1


def month_start_us(month: int) -> int:
    year, month0 = divmod(month, 12)
    start = datetime(year, month0 + 1, 1, tzinfo=UTC)
    return (start - _EPOCH) // timedelta(microseconds=1)


def partition_name(table: str, month: int) -> str:
    year, month0 = divmod(month, 12)
    return f"{table}_p{year:04d}{month0 + 1:02d}"


class PartitionManager:
    def __init__(self, ahead_months: int) -> None:
        self._ahead = ahead_months
        self._known: set[int] = set()
        self._lock = threading.Lock()
        self._ahead_checked = 0.0

    def load(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass"
        ).fetchall()
        with self._lock:
            for (name,) in rows:
                found = _NAME.match(name)
                if found:
                    self._known.add(int(found[1]) * 12 + int(found[2]) - 1)

    def ensure_ahead(self, conn: psycopg.Connection[Any], now_us: int | None = None) -> None:
        """The partitions of last month, this month and ``ahead_months`` to come."""
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        current = month_of(now_us)
        self.ensure(conn, set(range(current - 1, current + self._ahead + 1)))
        self._ahead_checked = time.monotonic()

    def ensure_for(self, conn: psycopg.Connection[Any], occurred_at: list[int]) -> None:
        """Before writing: every month among ``occurred_at`` has its partition."""
        if time.monotonic() - self._ahead_checked > _RECHECK_AHEAD_S:
            self.ensure_ahead(conn)
        months = {month_of(us) for us in occurred_at}
        if not months <= self._known:
            self.ensure(conn, months)

    def forget(self) -> None:
        """Drop what this process knows; the next write checks the catalog again."""
        with self._lock:
            self._known.clear()
        self._ahead_checked = 0.0

    def ensure(self, conn: psycopg.Connection[Any], months: set[int]) -> None:
        if not months - self._known:
            return
        self.load(conn)  # another process may have made them already
        missing = sorted(months - self._known)
        if not missing:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for month in missing:
                low, high = month_start_us(month), month_start_us(month + 1)
                for table in PARTITIONED_TABLES:
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {partition_name(table, month)}"
                        f" PARTITION OF {table} FOR VALUES FROM ({low}) TO ({high})"
                    )
        with self._lock:
            self._known.update(missing)
