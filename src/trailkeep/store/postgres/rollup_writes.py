"""PostgreSQL: adding a group's counts to the stats rollups, one statement per rollup.

The keys and counts go as one array per column through ``unnest``: the statement's text
is the same whatever the number of rows, so the server plans it once per connection
instead of parsing a new multi-row VALUES list for every group.
"""

from __future__ import annotations

from typing import Any

import psycopg

from trailkeep.store.stats.rollup_specs import RollupSpec
from trailkeep.store.stats.rollup_writes import Deltas, sorted_deltas

_ARRAY_TYPE = {
    "tenant_id": "text[]",
    "bucket": "int8[]",
    "action": "text[]",
    "severity": "int4[]",
    "outcome": "text[]",
    "actor_id": "text[]",
    "target_type": "text[]",
    "n": "int8[]",
}


def upsert_sql(spec: RollupSpec) -> str:
    columns = ("tenant_id", "bucket", *spec.dims, "n")
    arrays = ", ".join(f"%s::{_ARRAY_TYPE[c]}" for c in columns)
    keys = ", ".join(columns[:-1])
    # unnest keeps the arrays' (key) order, so rows are locked in key order.
    return (
        f"INSERT INTO {spec.table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
        f" ON CONFLICT ({keys}) DO UPDATE SET n = {spec.table}.n + excluded.n"
    )


def add_to_rollups(conn: psycopg.Connection[Any], deltas: Deltas) -> None:
    """Add counts to every rollup (inside the caller's transaction: the indexer's)."""
    for spec, items in sorted_deltas(deltas):
        width = 2 + len(spec.dims)
        columns: list[list[Any]] = [[key[i] for key, _n in items] for i in range(width)]
        columns.append([n for _key, n in items])
        conn.execute(upsert_sql(spec), columns)
