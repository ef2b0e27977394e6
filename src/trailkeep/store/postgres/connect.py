"""Opening PostgreSQL connections, and telling an outage from a bad statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from trailkeep.errors import StoreUnavailable
from trailkeep.store.urls import DatabaseUrl


@dataclass(frozen=True, slots=True)
class PgOptions:
    url: DatabaseUrl
    connect_timeout_s: float = 2.0
    statement_timeout_ms: int = 10_000
    read_timeout_ms: int = 5_000  # reads: searches and stats (QueryTimeout beyond)
    pool_size: int = 6

    def connect_kwargs(self, *, reads: bool = False) -> dict[str, Any]:
        # No statement may hold the database for long, whatever the request.
        timeout = self.read_timeout_ms if reads else self.statement_timeout_ms
        options = f"-c statement_timeout={timeout}"
        kwargs: dict[str, Any] = {
            "autocommit": True,  # transactions are explicit (conn.transaction())
            "connect_timeout": max(1, round(self.connect_timeout_s)),
            "application_name": "trailkeep",
        }
        if reads:
            # Planning a page query over every monthly partition and every branch of a
            # filter took 3 ms of a 4 ms query (measured, 1M-event tenant). Reads are
            # prepared on first use and keep one generic plan; partitions are then
            # pruned at run time. Every read query's shape fixes its index (see
            # store/reads/pages.py), so the plan does not depend on the values.
            kwargs["prepare_threshold"] = 0
            options += " -c plan_cache_mode=force_generic_plan"
            # A generic plan cannot see LIMIT 50: it prices a page as 10% of the tenant,
            # above jit_above_cost, and JIT then compiled every page query (~28 ms for
            # a 0.1 ms first page, measured at 2M events). Our reads are short index walks.
            options += " -c jit=off"
            # For the same reason a generic plan may start parallel workers for a page
            # (~10 ms to start two, for a 1 ms index walk). Reads are short: one
            # process each, and the two cores stay with the writer and the service.
            options += " -c max_parallel_workers_per_gather=0"
        kwargs["options"] = options
        return kwargs


def connect(options: PgOptions) -> psycopg.Connection[Any]:
    return psycopg.Connection.connect(options.url.libpq, **options.connect_kwargs())


def lost_connection(exc: BaseException) -> bool:
    """The failure is the database's, not one request's data: unreachable, restarting,
    out of disk or other resources (psycopg's OperationalError). Retrying a failed group
    one request at a time would only fail each again. A cancelled statement is excluded:
    it may be one request's lock wait."""
    return isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout)) and not (
        isinstance(exc, pg_errors.QueryCanceled)
    )


def unreachable(exc: BaseException) -> bool:
    """The server could not be reached or is going away: no connection, a pool that
    found none in time, or SQLSTATE class 08 (connection) / 57P (shutdown, crash)."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


def unavailable(exc: BaseException, doing: str) -> StoreUnavailable:
    """The 503 for a failed database call: says what failed, never the SQL or data."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        reason = "no database connection became available in time"
    elif isinstance(exc, pg_errors.DiskFull):
        reason = "the database disk is full"
    elif isinstance(exc, pg_errors.InsufficientPrivilege):
        reason = "the database user lacks a permission"
    elif isinstance(exc, pg_errors.QueryCanceled):
        reason = "the statement ran past the statement timeout"
    elif isinstance(exc, psycopg.OperationalError):
        reason = "the database is unreachable"
    else:
        reason = f"database error ({type(exc).__name__})"
    return StoreUnavailable(f"{doing} failed: {reason}", retry_after=1)
