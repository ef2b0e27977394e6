"""Pruning: reading the rows a retention run looks at, deleting them into tombstones,
putting archived rows back. Plain SQL both backends run (qmark).

What is deleted is exactly the log's rows of the events (``events``, ``event_targets``
and, on SQLite, their full-text rows); their leaf hashes stay in ``merkle_tiles`` and
each gets a tombstone in ``pruned_events``, which keeps its id taken. On PostgreSQL
``event_ids`` keeps its row for the same reason. Stats rollups keep counting pruned
events (docs/retention.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from trailkeep.store.connection import SqlConnection
from trailkeep.store.fulltext.index_rows import TENANT_SHIFT
from trailkeep.store.models import DueRow, PruneKey, Tombstone
from trailkeep.store.reads.seq_range import _as_bytes

_CHUNK = 400  # keys per IN (...) list


def _marks(n: int) -> str:
    return ",".join("?" * n)


def rows_in_window(
    conn: SqlConnection, partitioned: bool, tenant_id: str, from_seq: int, upper: int, before: int
) -> list[DueRow]:
    """The events with ``from_seq <= seq < upper`` that occurred before ``before``, in
    seq order (walked by the log's key, as exports read: store/reads/seq_range.py)."""
    if partitioned:
        sql = (
            "SELECT e.seq, e.id, e.occurred_at, e.action, e.severity, e.body FROM event_ids i"
            " JOIN events e ON e.tenant_id = i.tenant_id AND e.occurred_at = i.occurred_at"
            " AND e.seq = i.seq WHERE i.tenant_id = ? AND i.seq >= ? AND i.seq < ?"
            " AND i.occurred_at < ? ORDER BY i.seq"
        )
    else:
        sql = (
            "SELECT seq, id, occurred_at, action, severity, body FROM events"
            " WHERE tenant_id = ? AND seq >= ? AND seq < ? AND occurred_at < ? ORDER BY seq"
        )
    rows = conn.execute(sql, (tenant_id, from_seq, upper, before)).fetchall()
    return [DueRow(int(r[0]), r[1], int(r[2]), r[3], int(r[4]), _as_bytes(r[5])) for r in rows]


def targets_of(body: bytes) -> tuple[tuple[str, str], ...]:
    """The (type, id) keys of an event's event_targets rows, from its stored body (the
    writer made them from the same members: events/normalize.py)."""
    return targets_of_doc(orjson.loads(body))


def targets_of_doc(doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    found: dict[tuple[str, str], None] = {}
    for target in doc.get("targets") or ():
        if isinstance(target, dict):
            kind, ident = target.get("type"), target.get("id")
            if isinstance(kind, str) and isinstance(ident, str):
                found[(kind, ident)] = None
    return tuple(found)


def prune_rows(
    conn: SqlConnection,
    postgres: bool,
    tenant_id: str,
    rows: Sequence[PruneKey],
    segment: str | None,
    at: int,
) -> int:
    """Delete ``rows`` (one bounded batch, one transaction), leaving a tombstone each;
    returns how many rows were deleted (rows already gone count nothing)."""
    if not rows:
        return 0
    tombstones = [(tenant_id, r.seq, r.id, at, r.rule, segment) for r in rows]
    for start in range(0, len(tombstones), _CHUNK):
        marks = tombstones[start : start + _CHUNK]
        conn.execute(
            "INSERT INTO pruned_events (tenant_id, seq, id, pruned_at, rule, segment) VALUES "
            + ",".join(["(?,?,?,?,?,?)"] * len(marks))
            + " ON CONFLICT (tenant_id, seq) DO NOTHING",
            [v for t in marks for v in t],
        )
    targets = [
        (tenant_id, kind, ident, r.occurred_at, r.seq) for r in rows for kind, ident in r.targets
    ]
    if targets:
        # One prepared statement, its primary key each time: a row-value IN (VALUES ...)
        # list is not matched against the key by SQLite's planner (a scan per chunk).
        conn.executemany(
            "DELETE FROM event_targets WHERE tenant_id = ? AND target_type = ?"
            " AND target_id = ? AND occurred_at = ? AND seq = ?",
            targets,
        )
    deleted = 0
    seqs = [r.seq for r in rows]
    for start in range(0, len(seqs), _CHUNK):
        chunk = seqs[start : start + _CHUNK]
        if postgres:
            pairs = [v for r in rows[start : start + _CHUNK] for v in (r.occurred_at, r.seq)]
            cur = conn.execute(
                "DELETE FROM events WHERE tenant_id = ? AND (occurred_at, seq) IN"
                f" (VALUES {','.join(['(?,?)'] * len(chunk))})",
                (tenant_id, *pairs),
            )
        else:
            cur = conn.execute(
                f"DELETE FROM events WHERE tenant_id = ? AND seq IN ({_marks(len(chunk))})",
                (tenant_id, *chunk),
            )
        deleted += max(cur.rowcount, 0)
    if not postgres:
        num = conn.execute("SELECT num FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        if num is not None and num[0] is not None:
            base = int(num[0]) << TENANT_SHIFT
            for start in range(0, len(seqs), _CHUNK):
                chunk = seqs[start : start + _CHUNK]
                conn.execute(
                    f"DELETE FROM events_fts WHERE rowid IN ({_marks(len(chunk))})",
                    [base | s for s in chunk],
                )
    return deleted


_TOMBSTONE = "seq, id, pruned_at, rule, segment"


def _tombstone(row: tuple[Any, ...]) -> Tombstone:
    return Tombstone(int(row[0]), row[1], int(row[2]), row[3], row[4])


def tombstone_by_id(conn: SqlConnection, tenant_id: str, event_id: str) -> Tombstone | None:
    row = conn.execute(
        f"SELECT {_TOMBSTONE} FROM pruned_events WHERE tenant_id = ? AND id = ?",
        (tenant_id, event_id),
    ).fetchone()
    return None if row is None else _tombstone(row)


def tombstones_at(conn: SqlConnection, tenant_id: str, seqs: Sequence[int]) -> dict[int, Tombstone]:
    found: dict[int, Tombstone] = {}
    for start in range(0, len(seqs), _CHUNK):
        chunk = list(seqs[start : start + _CHUNK])
        rows = conn.execute(
            f"SELECT {_TOMBSTONE} FROM pruned_events WHERE tenant_id = ?"
            f" AND seq IN ({_marks(len(chunk))})",
            (tenant_id, *chunk),
        ).fetchall()
        for row in rows:
            found[int(row[0])] = _tombstone(row)
    return found


def pruned_count(conn: SqlConnection, tenant_id: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM pruned_events WHERE tenant_id = ?", (tenant_id,)
    ).fetchone()
    return int(row[0])


def forget_tombstones(conn: SqlConnection, tenant_id: str, seqs: Sequence[int]) -> None:
    """A restored segment's events are back: their tombstones go."""
    for start in range(0, len(seqs), _CHUNK):
        chunk = list(seqs[start : start + _CHUNK])
        conn.execute(
            f"DELETE FROM pruned_events WHERE tenant_id = ? AND seq IN ({_marks(len(chunk))})",
            (tenant_id, *chunk),
        )
