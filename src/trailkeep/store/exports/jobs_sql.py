"""Export jobs: plain SQL that both backends run (qmark; no literal "?" or "%").

A worker claims a job with one conditional UPDATE (compare and set on its state and
lease), so among any number of processes sharing a database exactly one runs it: the
UPDATE of the others matches no row. A claimed job stays claimed while its worker
renews the lease with each progress report; when a worker dies, the lease runs out
and the next worker to look takes the job over (and starts it again: attempts + 1).
Only one job per tenant runs at a time: a job is claimable only if no other job of
its tenant holds a live lease. Two claimants could each see "none running" and take
two jobs of one tenant; SQLite runs one write transaction at a time, and on PostgreSQL
a claimant first takes the tenant's transaction-scoped advisory lock (without waiting:
a tenant being claimed by someone else is skipped, so claimants never deadlock) and
checks again under it.
"""

from __future__ import annotations

from typing import Any

from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import ExportJobRecord

_COLUMNS = (
    "tenant_id, id, state, request, created_by, created_at, started_at, finished_at,"
    " lease_owner, lease_until, attempts, written, total, error, result"
)
_UPDATABLE = frozenset(
    {"state", "started_at", "finished_at", "lease_until", "written", "total", "error", "result"}
)
ACTIVE = ("queued", "running")


def _record(row: tuple[Any, ...]) -> ExportJobRecord:
    return ExportJobRecord(*row)


def insert_job(conn: SqlConnection, job: ExportJobRecord) -> None:
    conn.execute(
        f"INSERT INTO export_jobs ({_COLUMNS}) VALUES ({','.join('?' * 15)})",
        (
            job.tenant_id,
            job.id,
            job.state,
            job.request,
            job.created_by,
            job.created_at,
            job.started_at,
            job.finished_at,
            job.lease_owner,
            job.lease_until,
            job.attempts,
            job.written,
            job.total,
            job.error,
            job.result,
        ),
    )


def select_job(conn: SqlConnection, tenant_id: str, job_id: str) -> ExportJobRecord | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM export_jobs WHERE tenant_id = ? AND id = ?",
        (tenant_id, job_id),
    ).fetchone()
    return None if row is None else _record(row)


def select_jobs(
    conn: SqlConnection, tenant_id: str, before: tuple[int, str] | None, limit: int
) -> list[ExportJobRecord]:
    """The tenant's jobs, newest first, after the keyset position ``before``."""
    where, args = "tenant_id = ?", [tenant_id]
    if before is not None:
        where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
        args += [before[0], before[0], before[1]]  # type: ignore[list-item]
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM export_jobs WHERE {where}"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [_record(r) for r in rows]


def count_active(conn: SqlConnection, tenant_id: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM export_jobs WHERE tenant_id = ? AND state IN (?, ?)",
        (tenant_id, *ACTIVE),
    ).fetchone()
    return int(row[0])


_RUNNING_SQL = (
    "SELECT 1 FROM export_jobs WHERE tenant_id = ? AND id <> ? AND state = 'running'"
    " AND lease_until >= ?"
)


def _tenant_free(conn: SqlConnection, pg: bool, tenant_id: str, job_id: str, now: int) -> bool:
    """Whether this transaction may claim a job of ``tenant_id`` (locks it on PostgreSQL)."""
    if pg:
        row = conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext(CAST(? AS text)))",
            (f"trailkeep.export:{tenant_id}",),
        ).fetchone()
        if not row[0]:
            return False
    return conn.execute(_RUNNING_SQL, (tenant_id, job_id, now)).fetchone() is None


def claim_job(
    conn: SqlConnection,
    pg: bool,
    owner: str,
    now: int,
    lease_until: int,
    busy_tenants: list[str],
) -> ExportJobRecord | None:
    """Take the oldest job that is queued, or running with an expired lease, of a tenant
    with no other live job and not in ``busy_tenants``; None if there is none."""
    rows = conn.execute(
        "SELECT j.tenant_id, j.id, j.state, j.lease_until FROM export_jobs j"
        " WHERE (j.state = 'queued' OR (j.state = 'running' AND j.lease_until < ?))"
        " AND NOT EXISTS (SELECT 1 FROM export_jobs o WHERE o.tenant_id = j.tenant_id"
        " AND o.id <> j.id AND o.state = 'running' AND o.lease_until >= ?)"
        " ORDER BY j.created_at, j.id LIMIT 20",
        (now, now),
    ).fetchall()
    for tenant_id, job_id, state, old_lease in rows:
        if tenant_id in busy_tenants or not _tenant_free(conn, pg, tenant_id, job_id, now):
            continue
        lease_match = "lease_until IS NULL" if old_lease is None else "lease_until = ?"
        args: list[Any] = [owner, lease_until, now, tenant_id, job_id, state]
        if old_lease is not None:
            args.append(old_lease)
        cursor = conn.execute(
            "UPDATE export_jobs SET state = 'running', lease_owner = ?, lease_until = ?,"
            " started_at = ?, attempts = attempts + 1, written = 0, error = NULL"
            f" WHERE tenant_id = ? AND id = ? AND state = ? AND {lease_match}",
            args,
        )
        if cursor.rowcount == 1:
            return select_job(conn, tenant_id, job_id)
    return None


def update_job(
    conn: SqlConnection, tenant_id: str, job_id: str, owner: str, changes: dict[str, Any]
) -> bool:
    """Apply ``changes`` if ``owner`` still holds the running job (False: it lost it,
    to a cancellation or to another worker after its lease ran out)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = ", ".join(f"{name} = ?" for name in changes)
    cursor = conn.execute(
        f"UPDATE export_jobs SET {sets} WHERE tenant_id = ? AND id = ?"
        " AND state = 'running' AND lease_owner = ?",
        (*changes.values(), tenant_id, job_id, owner),
    )
    return bool(cursor.rowcount == 1)


def cancel_job(conn: SqlConnection, tenant_id: str, job_id: str, at: int) -> str | None:
    """Cancel a queued or running job; the state it is in afterwards (None: no such job)."""
    conn.execute(
        "UPDATE export_jobs SET state = 'cancelled', finished_at = ?, lease_owner = NULL"
        " WHERE tenant_id = ? AND id = ? AND state IN (?, ?)",
        (at, tenant_id, job_id, *ACTIVE),
    )
    row = conn.execute(
        "SELECT state FROM export_jobs WHERE tenant_id = ? AND id = ?", (tenant_id, job_id)
    ).fetchone()
    return None if row is None else str(row[0])
