"""The body of one group-commit transaction: idempotency checks, seqs, inserts.

Runs only on the writer thread, inside a transaction the writer opened.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from trailkeep.store.derived.indexer import INDEXER, count_range
from trailkeep.store.fulltext.index_rows import insert_sqlite_text
from trailkeep.store.fulltext.text_worker import text_of
from trailkeep.store.log.event_rows import Prior, build_rows, pruned_prior, supplied_ids
from trailkeep.store.log.positions import move_positions_past, seq_ranges
from trailkeep.store.models import AppendResult, EventDraft
from trailkeep.store.tree.tiles_sql import TreeAppender

_INSERT_EVENT = (
    "INSERT INTO events (tenant_id, seq, id, occurred_at, received_at, action, actor_id,"
    " actor_type, severity, outcome, request_hash, body) VALUES "
)
_EVENT_COLUMNS = 12
_INSERT_TARGET = (
    "INSERT INTO event_targets (tenant_id, seq, target_type, target_id, occurred_at) VALUES "
)
_TARGET_COLUMNS = 5
# Rows per multi-row INSERT. sqlite3's executemany releases and re-takes the GIL for
# every row; under load the event loop holds the GIL, so each re-take waits. One
# statement per chunk makes it one wait per chunk. 256 x 12 stays far below SQLite's
# limit of 32,766 parameters.
_CHUNK_ROWS = 256
_LOOKUP_CHUNK = 400


class SeqCache:
    """Next seq per tenant. Owned by the single writer, so no one else assigns seqs."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, conn: sqlite3.Connection, tenant_id: str) -> int:
        nxt = self._next.get(tenant_id)
        if nxt is None:
            # Retention may have pruned the newest events: their seqs stay taken.
            row = conn.execute(
                "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM events WHERE tenant_id = ?"
                " UNION ALL SELECT MAX(seq) FROM pruned_events WHERE tenant_id = ?)",
                (tenant_id, tenant_id),
            ).fetchone()
            nxt = 0 if row[0] is None else row[0] + 1
        self._next[tenant_id] = nxt + 1
        return nxt

    def clear(self) -> None:
        self._next.clear()


def _existing(conn: sqlite3.Connection, drafts: list[EventDraft]) -> dict[tuple[str, str], Prior]:
    """Stored events whose (tenant_id, id) collides with a client-supplied id."""
    found: dict[tuple[str, str], Prior] = {}
    for tenant_id, unique_ids in supplied_ids(drafts).items():
        for start in range(0, len(unique_ids), _LOOKUP_CHUNK):
            chunk = unique_ids[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT id, seq, request_hash, body FROM events"
                f" WHERE tenant_id = ? AND id IN ({marks})",
                (tenant_id, *chunk),
            )
            for event_id, seq, request_hash, body in rows:
                found[(tenant_id, event_id)] = (seq, request_hash, body)
        missing = [i for i in unique_ids if (tenant_id, i) not in found]
        for start in range(0, len(missing), _LOOKUP_CHUNK):
            chunk = missing[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            pruned = conn.execute(
                f"SELECT id, seq FROM pruned_events WHERE tenant_id = ? AND id IN ({marks})",
                (tenant_id, *chunk),
            )
            for event_id, seq in pruned:
                found[(tenant_id, event_id)] = pruned_prior(seq)
    return found


def write_events(
    conn: sqlite3.Connection,
    seqs: SeqCache,
    tree: TreeAppender | None,
    drafts: list[EventDraft],
) -> list[AppendResult]:
    """``tree=None`` only for bench/ingest.py's "without integrity" baseline."""
    rows = build_rows(
        drafts,
        _existing(conn, drafts),
        lambda tenant: seqs.take(conn, tenant),
        hash_leaves=tree is not None,
    )
    insert_log_rows(conn, rows.events, rows.targets)
    if tree is not None:
        tree.append(conn, rows.leaves, rows.first_seq)
    return rows.results


def insert_log_rows(
    conn: sqlite3.Connection,
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert finished rows (the column order of _INSERT_EVENT / _INSERT_TARGET): what
    the log needs and nothing derived (the indexer follows after commit)."""
    insert_rows(conn, _INSERT_EVENT, _EVENT_COLUMNS, event_rows)
    insert_rows(conn, _INSERT_TARGET, _TARGET_COLUMNS, target_rows)


def insert_stored_rows(
    conn: sqlite3.Connection,
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> None:
    """The log rows and, in the same transaction, their derived rows, with the indexer's
    position moved past them: for bulk loads (benchmarks, tests) of rows given in seq
    order per tenant, so that the service starts with nothing to catch up."""
    insert_log_rows(conn, event_rows, target_rows)
    insert_sqlite_text(conn, [(r[0], r[1], text_of(orjson.loads(r[11]))) for r in event_rows])
    for tenant_id, (low, high) in seq_ranges(event_rows).items():
        count_range(conn, False, tenant_id, low, high)
    move_positions_past(conn, INDEXER, event_rows)


@functools.lru_cache(maxsize=64)
def _values_clause(columns: int, rows: int) -> str:
    row = "(" + ",".join("?" * columns) + ")"
    return ",".join([row] * rows)


def insert_rows(
    conn: sqlite3.Connection, head: str, columns: int, rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT ``rows`` with as few statements as possible (see _CHUNK_ROWS)."""
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        params = [value for row in chunk for value in row]
        conn.execute(head + _values_clause(columns, len(chunk)), params)
