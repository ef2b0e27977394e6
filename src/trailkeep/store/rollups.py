"""Keeping the stats rollups (rollup_specs.py) in the transaction that stores events.

The counts of a group are added up in Python first, so each rollup row is written once
per group whatever the number of its events, in key order: two processes upserting the
same rows on PostgreSQL then lock them in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from trailkeep.store.rollup_specs import NO_ACTOR, ROLLUPS, RollupSpec
from trailkeep.store.sql import SqlConnection

# Column order of stored event rows (event_rows.StoredRows.events) and target rows.
_TENANT, _SEQ, _OCCURRED, _ACTION, _ACTOR, _SEVERITY, _OUTCOME = 0, 1, 3, 5, 6, 8, 9
_CHUNK = 200


def rollup_deltas(
    event_rows: Sequence[tuple[Any, ...]], target_rows: Sequence[tuple[Any, ...]]
) -> dict[RollupSpec, Counter[tuple[Any, ...]]]:
    """Per rollup: count per key (tenant_id, bucket, *dims) of the new rows."""
    deltas: dict[RollupSpec, Counter[tuple[Any, ...]]] = {spec: Counter() for spec in ROLLUPS}
    for spec in ROLLUPS:
        counter = deltas[spec]
        width = spec.width_us
        if spec.dims == ("target_type",):
            seen = {(r[0], r[1], r[2], r[4]) for r in target_rows}  # one per event and type
            for tenant, _seq, kind, occurred in seen:
                counter[(tenant, occurred - occurred % width, kind)] += 1
        elif spec.dims == ("actor_id",):
            for r in event_rows:
                occurred = r[_OCCURRED]
                actor = r[_ACTOR] if r[_ACTOR] is not None else NO_ACTOR
                counter[(r[_TENANT], occurred - occurred % width, actor)] += 1
        else:
            for r in event_rows:
                occurred = r[_OCCURRED]
                key = (r[_TENANT], occurred - occurred % width, r[_ACTION], r[_SEVERITY])
                counter[(*key, r[_OUTCOME])] += 1
    return deltas


def upsert_sql(spec: RollupSpec, rows: int) -> str:
    columns = ("tenant_id", "bucket", *spec.dims, "n")
    values = ",".join(["(" + ",".join("?" * len(columns)) + ")"] * rows)
    keys = ", ".join(columns[:-1])
    return (
        f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES {values}"
        f" ON CONFLICT ({keys}) DO UPDATE SET n = {spec.table}.n + excluded.n"
    )


def add_to_rollups(
    conn: SqlConnection,
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> None:
    """Add the new rows' counts to every rollup (inside the caller's transaction)."""
    if not event_rows:
        return
    for spec, counter in rollup_deltas(event_rows, target_rows).items():
        items = sorted(counter.items())
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            args = [v for key, n in chunk for v in (*key, n)]
            conn.execute(upsert_sql(spec, len(chunk)), args)


def rebuild_rollups_sql(spec: RollupSpec) -> str:
    """SQL that fills an empty rollup from stored events (the migration's backfill)."""
    w = spec.width_us
    # Floor, as in rollup_deltas (SQL's % truncates toward zero before 1970).
    bucket = f"(occurred_at - ((occurred_at % {w}) + {w}) % {w})"
    if spec.dims == ("target_type",):
        return (
            f"INSERT INTO {spec.table} (tenant_id, bucket, target_type, n)"
            f" SELECT tenant_id, {bucket}, target_type, COUNT(DISTINCT seq) FROM event_targets"
            f" GROUP BY tenant_id, {bucket}, target_type"
        )
    if spec.dims == ("actor_id",):
        actor = f"COALESCE(actor_id, '{NO_ACTOR}')"
        return (
            f"INSERT INTO {spec.table} (tenant_id, bucket, actor_id, n)"
            f" SELECT tenant_id, {bucket}, {actor}, COUNT(*) FROM events"
            f" GROUP BY tenant_id, {bucket}, {actor}"
        )
    dims = ", ".join(spec.dims)
    return (
        f"INSERT INTO {spec.table} (tenant_id, bucket, {dims}, n)"
        f" SELECT tenant_id, {bucket}, {dims}, COUNT(*) FROM events"
        f" GROUP BY tenant_id, {bucket}, {dims}"
    )
