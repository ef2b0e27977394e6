"""Reading events: by id, and filtered pages in newest-first keyset order.

Every query is led by ``tenant_id`` and walks an index whose trailing columns are
``(occurred_at, seq)``, so the first page and a page 500 pages deep cost the same.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from trailkeep.store.models import EventFilter, EventRow, PageKey


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def get_event(conn: sqlite3.Connection, tenant_id: str, event_id: str) -> bytes | None:
    row = conn.execute(
        "SELECT body FROM events WHERE tenant_id = ? AND id = ?", (tenant_id, event_id)
    ).fetchone()
    return None if row is None else bytes(row[0])


def _event_conditions(flt: EventFilter, alias: str) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if flt.actor_id is not None:
        where.append(f"{alias}.actor_id = ?")
        args.append(flt.actor_id)
    if flt.action is not None:
        where.append(f"{alias}.action = ?")
        args.append(flt.action)
    if flt.action_prefix:
        where.append(f"{alias}.action >= ? AND {alias}.action < ?")
        args += [flt.action_prefix, prefix_upper_bound(flt.action_prefix)]
    if flt.min_severity is not None:
        where.append(f"{alias}.severity >= ?")
        args.append(flt.min_severity)
    if flt.outcome is not None:
        where.append(f"{alias}.outcome = ?")
        args.append(flt.outcome)
    return where, args


def _order_conditions(
    flt: EventFilter, after: PageKey | None, alias: str
) -> tuple[list[str], list[Any]]:
    where: list[str] = [f"{alias}.tenant_id = ?"]
    args: list[Any] = [flt.tenant_id]
    if flt.occurred_from is not None:
        where.append(f"{alias}.occurred_at >= ?")
        args.append(flt.occurred_from)
    if flt.occurred_to is not None:
        where.append(f"{alias}.occurred_at < ?")
        args.append(flt.occurred_to)
    if after is not None:
        where.append(f"({alias}.occurred_at, {alias}.seq) < (?, ?)")
        args += [after.occurred_at, after.seq]
    return where, args


def _build(flt: EventFilter, after: PageKey | None, limit: int) -> tuple[str, list[Any]]:
    if flt.target_type is None:
        where, args = _order_conditions(flt, after, "e")
        more, more_args = _event_conditions(flt, "e")
        sql = (
            "SELECT e.occurred_at, e.seq, e.body FROM events e WHERE "
            + " AND ".join(where + more)
            + " ORDER BY e.occurred_at DESC, e.seq DESC LIMIT ?"
        )
        return sql, [*args, *more_args, limit]
    # Target filters are driven from the targets index, which is ordered by time too.
    where, args = _order_conditions(flt, after, "t")
    where.append("t.target_type = ?")
    args.append(flt.target_type)
    if flt.target_id is not None:
        where.append("t.target_id = ?")
        args.append(flt.target_id)
    more, more_args = _event_conditions(flt, "e")
    sql = (
        "SELECT t.occurred_at, t.seq, e.body FROM event_targets t"
        " JOIN events e ON e.tenant_id = t.tenant_id AND e.seq = t.seq WHERE "
        + " AND ".join(where + more)
        + " ORDER BY t.occurred_at DESC, t.seq DESC LIMIT ?"
    )
    return sql, [*args, *more_args, limit]


def list_events(
    conn: sqlite3.Connection, flt: EventFilter, after: PageKey | None, limit: int
) -> list[EventRow]:
    rows: list[EventRow] = []
    seen: set[int] = set()
    cursor = after
    while len(rows) < limit:
        want = limit - len(rows)
        sql, args = _build(flt, cursor, want)
        fetched = conn.execute(sql, args).fetchall()
        for occurred_at, seq, body in fetched:
            # One event with two targets of the filtered type shows up twice.
            if seq not in seen:
                seen.add(seq)
                rows.append(EventRow(occurred_at, seq, bytes(body)))
        if len(fetched) < want or flt.target_type is None:
            break
        cursor = PageKey(fetched[-1][0], fetched[-1][1])
    return rows[:limit]
