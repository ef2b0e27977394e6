"""Counting events into the rollups outside the indexer: in Python, for the
recomputation check (store/derived/check.py, independent of the indexer's SQL in
range_counts.py), and the SQL that fills an empty rollup from the stored events (the
migrations' backfill)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from trailkeep.store.stats.rollup_specs import (
    ACTOR_DIMS,
    FAMILIES,
    NO_ACTOR,
    TARGET_DIMS,
    RollupSpec,
)

# Column order of stored event rows (store/log/event_rows.StoredRows.events).
_TENANT, _OCCURRED, _ACTOR = 0, 3, 6
_EVENT_COLUMN = {"action": 5, "severity": 8, "outcome": 9}
_CHUNK = 200

Key = tuple[Any, ...]  # (tenant_id, bucket, *dims)


def _base_counts(
    family: tuple[RollupSpec, ...],
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> Counter[Key]:
    """Counts of the family's narrowest rollup."""
    spec = family[0]
    width = spec.width_us
    counter: Counter[Key] = Counter()
    if spec.dims == TARGET_DIMS:
        # Target rows: (tenant_id, seq, target_type, target_id, occurred_at); an event
        # counts once per distinct type of its targets.
        for tenant, _seq, kind, occurred in {(r[0], r[1], r[2], r[4]) for r in target_rows}:
            counter[(tenant, occurred - occurred % width, kind)] += 1
    elif spec.dims == ACTOR_DIMS:
        for r in event_rows:
            occurred = r[_OCCURRED]
            actor = r[_ACTOR] if r[_ACTOR] is not None else NO_ACTOR
            counter[(r[_TENANT], occurred - occurred % width, actor)] += 1
    else:
        columns = [_EVENT_COLUMN[d] for d in spec.dims]
        for r in event_rows:
            occurred = r[_OCCURRED]
            counter[(r[_TENANT], occurred - occurred % width, *(r[c] for c in columns))] += 1
    return counter


def rollup_deltas(
    event_rows: Sequence[tuple[Any, ...]], target_rows: Sequence[tuple[Any, ...]]
) -> dict[RollupSpec, Counter[Key]]:
    """Per rollup: count per key (tenant_id, bucket, *dims) of the new rows. The wider
    rollups of a family are summed from its narrowest (Python's % floors, as the
    buckets must, also before 1970)."""
    deltas: dict[RollupSpec, Counter[Key]] = {}
    for family in FAMILIES:
        base = _base_counts(family, event_rows, target_rows)
        deltas[family[0]] = base
        for spec in family[1:]:
            wider: Counter[Key] = Counter()
            width = spec.width_us
            for (tenant, bucket, *dims), n in base.items():
                wider[(tenant, bucket - bucket % width, *dims)] += n
            deltas[spec] = wider
    return deltas


Deltas = dict[RollupSpec, Counter[Key]]


def rebuild_rollups_sql(spec: RollupSpec) -> str:
    """SQL that fills an empty rollup from stored events (the migrations' backfill)."""
    w = spec.width_us
    # Floor, as in rollup_deltas (SQL's % truncates toward zero before 1970).
    bucket = f"(occurred_at - ((occurred_at % {w}) + {w}) % {w})"
    if spec.dims == TARGET_DIMS:
        return (
            f"INSERT INTO {spec.table} (tenant_id, bucket, target_type, n)"
            f" SELECT tenant_id, {bucket}, target_type, COUNT(DISTINCT seq) FROM event_targets"
            f" GROUP BY tenant_id, {bucket}, target_type"
        )
    if spec.dims == ACTOR_DIMS:
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
