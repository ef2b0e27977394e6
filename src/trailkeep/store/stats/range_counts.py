"""Counting a range of one tenant's log into every rollup, in SQL (the indexer's write).

The events of ``[from_seq, to_seq)`` are staged once into temporary tables (their
grouping columns, and the distinct target types of each event from its stored body),
then each rollup adds their counts with one ``INSERT ... SELECT ... GROUP BY ... ON
CONFLICT DO UPDATE``. The database does all of it: no Python runs per event, so the
indexer takes no interpreter time from the requests of the process (it did when the
counts were added up in Python, store/stats/recount.rollup_deltas, which stays
as the independent recomputation of store/derived/check.py).

Rows are grouped in key order, so two writers upserting the same rollup rows lock
them in the same order (on PostgreSQL; and a tenant's range is applied by one process
at a time, under the lock of its follower position).
"""

from __future__ import annotations

import functools

from trailkeep.store.connection import SqlConnection
from trailkeep.store.stats.rollup_specs import (
    ACTOR_DIMS,
    NO_ACTOR,
    ROLLUPS,
    TARGET_DIMS,
    RollupSpec,
)

_STAGE_EVENTS = "index_range"
_STAGE_TARGETS = "index_range_targets"


def _create_stage(conn: SqlConnection, postgres: bool) -> None:
    # Temporary: per connection, never written to the WAL, gone with the connection.
    keep = " ON COMMIT DELETE ROWS" if postgres else ""
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_EVENTS} (tenant_id TEXT NOT NULL,"
        " seq BIGINT NOT NULL, occurred_at BIGINT NOT NULL, action TEXT NOT NULL,"
        f" actor_id TEXT, severity INTEGER NOT NULL, outcome TEXT NOT NULL){keep}"
    )
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_TARGETS} (tenant_id TEXT NOT NULL,"
        f" seq BIGINT NOT NULL, occurred_at BIGINT NOT NULL, target_type TEXT NOT NULL){keep}"
    )
    if postgres:
        # A generic plan made while the tables were small (a pooled connection keeps it)
        # scanned every partition for each range once they were large: plan each range
        # for its own bounds (the preload of 1M events slowed from 2,900 to 1,100/s).
        conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    # Emptied before each range: a round stages several tenants in one transaction.
    conn.execute(f"DELETE FROM {_STAGE_EVENTS}")
    conn.execute(f"DELETE FROM {_STAGE_TARGETS}")


def stage_range(
    conn: SqlConnection, postgres: bool, tenant_id: str, from_seq: int, to_seq: int
) -> None:
    """Copy the range's grouping columns and target types into the staging tables."""
    _create_stage(conn, postgres)
    columns = "e.tenant_id, e.seq, e.occurred_at, e.action, e.actor_id, e.severity, e.outcome"
    if postgres:
        source = (
            "event_ids i JOIN events e ON e.tenant_id = i.tenant_id"
            " AND e.occurred_at = i.occurred_at AND e.seq = i.seq"
            " WHERE i.tenant_id = ? AND i.seq >= ? AND i.seq < ?"
        )
        types = (
            "SELECT DISTINCT e.tenant_id, e.seq, e.occurred_at, t.value ->> 'type'"
            " FROM event_ids i JOIN events e ON e.tenant_id = i.tenant_id"
            " AND e.occurred_at = i.occurred_at AND e.seq = i.seq"
            " CROSS JOIN LATERAL (SELECT convert_from(e.body, 'UTF8')::jsonb -> 'targets' AS ts) b"
            " CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(b.ts) = 'array'"
            " THEN b.ts ELSE '[]'::jsonb END) AS t(value)"
            " WHERE i.tenant_id = ? AND i.seq >= ? AND i.seq < ?"
            " AND jsonb_typeof(t.value) = 'object' AND t.value ->> 'type' IS NOT NULL"
        )
    else:
        source = "events e WHERE e.tenant_id = ? AND e.seq >= ? AND e.seq < ?"
        types = (
            "SELECT DISTINCT e.tenant_id, e.seq, e.occurred_at, json_extract(t.value, '$.type')"
            " FROM events e, json_each(CAST(e.body AS TEXT), '$.targets') AS t"
            " WHERE e.tenant_id = ? AND e.seq >= ? AND e.seq < ? AND t.type = 'object'"
            " AND json_extract(t.value, '$.type') IS NOT NULL"
        )
    bounds = (tenant_id, from_seq, to_seq)
    conn.execute(f"INSERT INTO {_STAGE_EVENTS} SELECT {columns} FROM {source}", bounds)
    conn.execute(f"INSERT INTO {_STAGE_TARGETS} {types}", bounds)


@functools.cache
def count_sql(spec: RollupSpec, postgres: bool) -> str:
    """Add the staged events' counts to one rollup. (PostgreSQL's text doubles the "%"
    of the modulo: the qmark adapter hands psycopg a statement with parameters.)"""
    w = spec.width_us
    # Floor, as rollup_deltas does (SQL's % truncates toward zero before 1970).
    bucket = f"(occurred_at - ((occurred_at % {w}) + {w}) % {w})"
    if spec.dims == TARGET_DIMS:
        dims, source, n = "target_type", _STAGE_TARGETS, "COUNT(DISTINCT seq)"
    elif spec.dims == ACTOR_DIMS:
        dims, source, n = f"COALESCE(actor_id, '{NO_ACTOR}')", _STAGE_EVENTS, "COUNT(*)"
    else:
        dims, source, n = ", ".join(spec.dims), _STAGE_EVENTS, "COUNT(*)"
    keys = ", ".join(("tenant_id", "bucket", *spec.dims))
    groups = ", ".join(str(i) for i in range(1, 3 + len(spec.dims)))
    sql = (
        f"INSERT INTO {spec.table} ({keys}, n)"
        f" SELECT tenant_id, {bucket}, {dims}, {n} FROM {source} WHERE true"
        f" GROUP BY {groups} ORDER BY {groups}"
        f" ON CONFLICT ({keys}) DO UPDATE SET n = {spec.table}.n + excluded.n"
    )
    return sql.replace("%", "%%") if postgres else sql


def count_staged(conn: SqlConnection, postgres: bool) -> None:
    """Add the staged range to every rollup (inside the indexer's transaction)."""
    for spec in ROLLUPS:
        conn.execute(count_sql(spec, postgres))
