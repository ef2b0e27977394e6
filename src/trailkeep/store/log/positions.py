"""The SQL of following the log (log/follower.py), shared by both backends.

``log_positions`` holds, per tenant and follower, the next seq the follower has not yet
applied; ``log_skips`` the events it passed over as poison, with the error. A tenant's
log head is the seq after its newest committed event: ``MAX(seq) + 1`` on SQLite (one
writer, so every seq below it is committed), ``tenant_seqs.next_seq`` on PostgreSQL
(written in the same transaction as the events, under the tenant's lock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trailkeep.kit.timeutil import now_us
from trailkeep.store.connection import SqlConnection

# One stored event as the log holds it: the column order of LOG_COLUMNS (the order the
# writer builds its rows in, store/log/event_rows.py).
LogRow = tuple[Any, ...]
LOG_COLUMNS = (
    "tenant_id, seq, id, occurred_at, received_at, action, actor_id, actor_type,"
    " severity, outcome, request_hash, body"
)
BODY = 11


@dataclass(frozen=True, slots=True)
class Skip:
    seq: int
    error: str


def _marks(n: int) -> str:
    return ",".join("?" * n)


def log_lag(
    conn: SqlConnection, postgres: bool, follower: str, tenants: set[str] | None
) -> dict[str, tuple[int, int]]:
    """tenant -> (position, head) for the tenants whose head is past the position."""
    among = sorted(tenants) if tenants is not None else []
    if tenants is not None and not among:
        return {}
    if postgres:
        sql = (
            "SELECT s.tenant_id, COALESCE(p.next_seq, 0), s.next_seq FROM tenant_seqs s"
            " LEFT JOIN log_positions p ON p.tenant_id = s.tenant_id AND p.follower = ?"
            " WHERE s.next_seq > COALESCE(p.next_seq, 0)"
        )
        if tenants is not None:
            sql += f" AND s.tenant_id IN ({_marks(len(among))})"
    else:
        sql = (
            "SELECT t.id, COALESCE(p.next_seq, 0),"
            " COALESCE((SELECT MAX(e.seq) + 1 FROM events e WHERE e.tenant_id = t.id), 0)"
            " FROM tenants t LEFT JOIN log_positions p ON p.tenant_id = t.id AND p.follower = ?"
        )
        if tenants is not None:
            sql += f" WHERE t.id IN ({_marks(len(among))})"
    rows = conn.execute(sql, (follower, *among)).fetchall()
    return {tenant: (pos, head) for tenant, pos, head in rows if head > pos}


def read_log(
    conn: SqlConnection, postgres: bool, tenant_id: str, from_seq: int, to_seq: int
) -> list[LogRow]:
    """The tenant's stored events with from_seq <= seq < to_seq, in seq order (there may
    be gaps: events removed by retention)."""
    if postgres:
        columns = ", ".join(f"e.{c.strip()}" for c in LOG_COLUMNS.split(","))
        sql = (
            f"SELECT {columns} FROM event_ids i JOIN events e ON e.tenant_id = i.tenant_id"
            " AND e.occurred_at = i.occurred_at AND e.seq = i.seq"
            " WHERE i.tenant_id = ? AND i.seq >= ? AND i.seq < ? ORDER BY i.seq"
        )
    else:
        sql = (
            f"SELECT {LOG_COLUMNS} FROM events"
            " WHERE tenant_id = ? AND seq >= ? AND seq < ? ORDER BY seq"
        )
    rows = conn.execute(sql, (tenant_id, from_seq, to_seq)).fetchall()
    return [(*r[:BODY], bytes(r[BODY])) for r in rows]


def advance(
    conn: SqlConnection,
    postgres: bool,
    follower: str,
    tenant_id: str,
    from_seq: int,
    to_seq: int,
    skips: list[Skip],
    write: Callable[[SqlConnection], None] | None,
) -> bool:
    """Run inside one transaction: move the follower from ``from_seq`` to ``to_seq`` and
    apply ``write``, or do nothing and return False when the position is elsewhere
    (another process applied these events) or the tenant is gone."""
    if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
        return False
    at = now_us()
    conn.execute(
        "INSERT INTO log_positions (tenant_id, follower, next_seq, updated_at)"
        " VALUES (?, ?, 0, ?) ON CONFLICT (tenant_id, follower) DO NOTHING",
        (tenant_id, follower, at),
    )
    lock = " FOR UPDATE" if postgres else ""
    row = conn.execute(
        f"SELECT next_seq FROM log_positions WHERE tenant_id = ? AND follower = ?{lock}",
        (tenant_id, follower),
    ).fetchone()
    if row is None or row[0] != from_seq:
        return False
    if write is not None:
        write(conn)
    for skip in skips:
        conn.execute(
            "INSERT INTO log_skips (tenant_id, follower, seq, error, skipped_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, follower, seq) DO NOTHING",
            (tenant_id, follower, skip.seq, skip.error, at),
        )
    conn.execute(
        "UPDATE log_positions SET next_seq = ?, updated_at = ?"
        " WHERE tenant_id = ? AND follower = ?",
        (to_seq, at, tenant_id, follower),
    )
    return True


def position(conn: SqlConnection, follower: str, tenant_id: str) -> int:
    """The follower's position in the tenant's log: every event below it is applied."""
    row = conn.execute(
        "SELECT next_seq FROM log_positions WHERE tenant_id = ? AND follower = ?",
        (tenant_id, follower),
    ).fetchone()
    return 0 if row is None else int(row[0])


def skipped(conn: SqlConnection, follower: str, tenant_id: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT seq, error FROM log_skips WHERE tenant_id = ? AND follower = ? ORDER BY seq",
        (tenant_id, follower),
    ).fetchall()
    return [(int(seq), str(error)) for seq, error in rows]


def seq_ranges(rows: Sequence[LogRow]) -> dict[str, tuple[int, int]]:
    """Per tenant, the range [lowest seq, highest seq + 1) of ``rows``."""
    ranges: dict[str, tuple[int, int]] = {}
    for row in rows:
        low, high = ranges.get(row[0], (row[1], row[1] + 1))
        ranges[row[0]] = (min(low, row[1]), max(high, row[1] + 1))
    return ranges


def move_positions_past(conn: SqlConnection, follower: str, rows: Sequence[LogRow]) -> None:
    """Bulk loads that apply a follower's work themselves: its position of each tenant
    among ``rows`` moves past the newest of them (never back)."""
    newest: dict[str, int] = {}
    for row in rows:
        if row[1] >= newest.get(row[0], -1):
            newest[row[0]] = row[1]
    at = now_us()
    for tenant_id, seq in sorted(newest.items()):
        conn.execute(
            "INSERT INTO log_positions (tenant_id, follower, next_seq, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, follower) DO UPDATE SET"
            " next_seq = CASE WHEN excluded.next_seq > log_positions.next_seq"
            " THEN excluded.next_seq ELSE log_positions.next_seq END,"
            " updated_at = excluded.updated_at",
            (tenant_id, follower, seq + 1, at),
        )
