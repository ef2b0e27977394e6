"""Retention runs and archive segments: plain SQL both backends run (qmark).

At most one run per tenant is ``running``, across every process sharing the database:
a partial unique index says so (``ux_retention_runs_running``), so a second start
fails at insert whatever the timing. A run renews its lease as it works; a run whose
lease ran out (its process died) is marked failed by the next start, which then
finishes the work it left: segments that are archived but not yet pruned.
"""

from __future__ import annotations

from typing import Any

from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import RetentionRunRecord, SegmentRecord

_RUN = (
    "tenant_id, id, state, requested_by, created_at, finished_at, lease_owner, lease_until,"
    " report, error"
)
_SEGMENT = (
    "tenant_id, id, run_id, state, from_seq, to_seq, rows, destination, location, manifest,"
    " created_at"
)


def start_run(conn: SqlConnection, run: RetentionRunRecord) -> RetentionRunRecord | None:
    """Insert ``run`` as running, unless another live run of the tenant is; returns
    that other run (None: started). A run whose lease ran out is failed first."""
    conn.execute(
        "UPDATE retention_runs SET state = 'failed', finished_at = ?,"
        " error = 'interrupted: its process stopped before it finished (the next run'"
        " || ' completes its work)' WHERE tenant_id = ? AND state = 'running'"
        " AND lease_until < ?",
        (run.created_at, run.tenant_id, run.created_at),
    )
    row = conn.execute(
        f"SELECT {_RUN} FROM retention_runs WHERE tenant_id = ? AND state = 'running'",
        (run.tenant_id,),
    ).fetchone()
    if row is not None:
        return RetentionRunRecord(*row)
    conn.execute(
        f"INSERT INTO retention_runs ({_RUN}) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            run.tenant_id,
            run.id,
            run.state,
            run.requested_by,
            run.created_at,
            run.finished_at,
            run.lease_owner,
            run.lease_until,
            run.report,
            run.error,
        ),
    )
    return None


def update_run(
    conn: SqlConnection, tenant_id: str, run_id: str, owner: str, changes: dict[str, Any]
) -> bool:
    """Update a run this owner still holds; False if it lost it."""
    allowed = {"state", "finished_at", "lease_until", "report", "error"}
    assert set(changes) <= allowed, set(changes) - allowed
    sets = ", ".join(f"{k} = ?" for k in changes)
    cur = conn.execute(
        f"UPDATE retention_runs SET {sets} WHERE tenant_id = ? AND id = ? AND lease_owner = ?"
        " AND state = 'running'",
        (*changes.values(), tenant_id, run_id, owner),
    )
    return bool(cur.rowcount == 1)


def select_run(conn: SqlConnection, tenant_id: str, run_id: str) -> RetentionRunRecord | None:
    row = conn.execute(
        f"SELECT {_RUN} FROM retention_runs WHERE tenant_id = ? AND id = ?", (tenant_id, run_id)
    ).fetchone()
    return None if row is None else RetentionRunRecord(*row)


def select_runs(conn: SqlConnection, tenant_id: str, limit: int) -> list[RetentionRunRecord]:
    rows = conn.execute(
        f"SELECT {_RUN} FROM retention_runs WHERE tenant_id = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (tenant_id, limit),
    ).fetchall()
    return [RetentionRunRecord(*r) for r in rows]


def insert_segment(conn: SqlConnection, seg: SegmentRecord) -> None:
    conn.execute(
        f"INSERT INTO archive_segments ({_SEGMENT}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            seg.tenant_id,
            seg.id,
            seg.run_id,
            seg.state,
            seg.from_seq,
            seg.to_seq,
            seg.rows,
            seg.destination,
            seg.location,
            seg.manifest,
            seg.created_at,
        ),
    )


def set_segment_state(conn: SqlConnection, tenant_id: str, segment_id: str, state: str) -> None:
    conn.execute(
        "UPDATE archive_segments SET state = ? WHERE tenant_id = ? AND id = ?",
        (state, tenant_id, segment_id),
    )


def select_segment(conn: SqlConnection, tenant_id: str, segment_id: str) -> SegmentRecord | None:
    row = conn.execute(
        f"SELECT {_SEGMENT} FROM archive_segments WHERE tenant_id = ? AND id = ?",
        (tenant_id, segment_id),
    ).fetchone()
    return None if row is None else SegmentRecord(*row)


def select_segments(
    conn: SqlConnection, tenant_id: str, after: str | None, limit: int, state: str | None
) -> list[SegmentRecord]:
    """Segments in id order (their ids are UUIDv7: oldest first), after the id ``after``."""
    sql = f"SELECT {_SEGMENT} FROM archive_segments WHERE tenant_id = ? AND id > ?"
    args: list[Any] = [tenant_id, after or ""]
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    rows = conn.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
    return [SegmentRecord(*r) for r in rows]
