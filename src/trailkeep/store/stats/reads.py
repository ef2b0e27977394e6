"""Stats: counts over time and the top groups, from rollups when they can answer.

A rollup family (rollup_specs.py) answers when it holds the grouped dimension and
every filter of the query is on its dimensions; the first such family in FAMILIES (the
cheapest to read) is used. Anything else (words, actor names, targets, metadata, ...) is
counted from the events themselves, bounded by the query timeout.

Three queries: the top N groups over the window, which adds up the family's widest
buckets that fit in the window and narrower ones only at its edges (``tile``); the
total per bucket, from the cheapest family that can filter (the totals family unless a
filter needs more); and the count per bucket of each top group. The rollup table, or
events, is aliased ``e`` with the same column names, so the filter SQL
(reads/pages.residual_of) serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from trailkeep.kit.query_ast import SeverityMatch, TextMatch
from trailkeep.query.filter import EventFilter
from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import StatsRequest, StatsResult
from trailkeep.store.reads.conditions import Where
from trailkeep.store.reads.fulltext import text_predicate
from trailkeep.store.reads.pages import ReadDialect, residual_of
from trailkeep.store.stats.rollup_specs import (
    ACTOR_DIMS,
    FAMILIES,
    GROUP_INDEX,
    NO_ACTOR,
    RollupSpec,
)
from trailkeep.store.stats.top_groups import top_by_threshold

_GROUP_COLUMN = {
    "action": "action",
    "severity": "severity",
    "outcome": "outcome",
    "actor": "actor_id",
    "target_type": "target_type",
}
# Query fields a rollup's dimensions can filter on.
_FILTERABLE = {"action": "action", "outcome": "outcome", "actor.id": "actor_id"}

Family = tuple[RollupSpec, ...]


def filter_dims(flt: EventFilter) -> set[str] | None:
    """The rollup dimensions ``flt`` filters on; None when no rollup can filter it."""
    if flt.text or flt.target_type is not None:
        return None
    dims = set()
    if flt.action is not None or flt.action_prefix:
        dims.add("action")
    if flt.min_severity is not None:
        dims.add("severity")
    if flt.outcome is not None:
        dims.add("outcome")
    if flt.actor_id is not None:
        dims.add("actor_id")
    for term in flt.conditions:
        if isinstance(term, SeverityMatch):
            dims.add("severity")
        elif isinstance(term, TextMatch) and term.field in _FILTERABLE:
            dims.add(_FILTERABLE[term.field])
        else:
            return None
    return dims


def _family_for(dims: set[str], width_us: int) -> Family | None:
    """The cheapest family holding ``dims`` whose narrowest buckets divide ``width_us``."""
    for family in FAMILIES:
        if dims <= set(family[0].dims) and width_us % family[0].width_us == 0:
            return family
    return None


def _widest_dividing(family: Family, width_us: int) -> RollupSpec:
    return [s for s in family if width_us % s.width_us == 0][-1]


@dataclass(frozen=True, slots=True)
class StatsPlan:
    """Where each of the three queries reads; None: from events."""

    top: Family | None  # the top groups (tiled over the family's widths)
    groups: RollupSpec | None  # counts per bucket of the top groups
    totals: RollupSpec | None  # total per bucket


def plan_stats(request: StatsRequest) -> StatsPlan:
    dims = filter_dims(request.flt)
    if dims is None:
        return StatsPlan(None, None, None)
    width = request.width_us
    family = _family_for(dims | {_GROUP_COLUMN[request.group_by]}, width)
    totals = _family_for(dims, width)
    if family is None or totals is None:
        return StatsPlan(None, None, None)
    return StatsPlan(family, _widest_dividing(family, width), _widest_dividing(totals, width))


def tile(start: int, end: int, widths: list[int]) -> list[tuple[int, int, int]]:
    """[start, end) as (width, lo, hi) pieces of whole buckets of ``widths`` (ascending,
    each dividing the next): the widest fitting buckets in the middle, narrower ones
    toward the edges. ``start`` and ``end`` are multiples of the narrowest width."""
    if start >= end:
        return []
    for i in range(len(widths) - 1, -1, -1):
        w = widths[i]
        lo, hi = -(-start // w) * w, end // w * w
        if lo < hi:
            return [*tile(start, lo, widths[:i]), (w, lo, hi), *tile(hi, end, widths[:i])]
    raise ValueError(f"[{start}, {end}) is not made of buckets of {widths}")


def _rollup_where(dialect: ReadDialect, flt: EventFilter) -> Where:
    """The tenant and the filters, on a rollup (each query adds its own window)."""
    where = Where()
    where.add("e.tenant_id = ?", flt.tenant_id)
    where.extend(residual_of(dialect, replace(flt, occurred_from=None, occurred_to=None), set()))
    return where


def _scan_source(dialect: ReadDialect, request: StatsRequest, by_target: bool) -> tuple[str, Where]:
    """(FROM clause, WHERE with the window) counting the events themselves."""
    flt = request.flt
    where = Where()
    where.add("e.tenant_id = ?", flt.tenant_id)
    where.add("e.occurred_at >= ? AND e.occurred_at < ?", request.start, request.end)
    plain = replace(flt, occurred_from=None, occurred_to=None, text=())
    where.extend(residual_of(dialect, plain, set()))
    if flt.text:
        where.extend(text_predicate(dialect, flt))
    source = "events e"
    if by_target:
        # One row per event and distinct target type.
        source += (
            " JOIN (SELECT DISTINCT tenant_id, occurred_at, seq, target_type FROM event_targets"
            " WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ?) AS g"
            " ON g.tenant_id = e.tenant_id AND g.occurred_at = e.occurred_at AND g.seq = e.seq"
        )
        where = Where([*where.sql], [flt.tenant_id, request.start, request.end, *where.args])
    return source, where


def bucket_start(expr: str, width: int, dialect: ReadDialect) -> str:
    """The start of ``expr``'s bucket: floor, like the writer's Python, also before 1970
    (SQL's % truncates toward zero). psycopg reads a lone % as a placeholder."""
    mod = "%%" if dialect.partitioned else "%"
    return f"({expr} - (({expr} {mod} {width}) + {width}) {mod} {width})"


@dataclass(frozen=True, slots=True)
class _Counted:
    """One of the three queries' source: FROM, WHERE (window included), bucket, count."""

    source: str
    where: Where
    bucket: str
    count: str


def _from_rollup(
    dialect: ReadDialect, request: StatsRequest, spec: RollupSpec, by_group: bool = False
) -> _Counted:
    where = _rollup_where(dialect, request.flt)
    where.add("e.bucket >= ? AND e.bucket < ?", request.start, request.end)
    # A rollup as wide as the interval: its own bucket column, in key order, lets the
    # database group without sorting.
    bucket = (
        "e.bucket"
        if spec.width_us == request.width_us
        else bucket_start("e.bucket", request.width_us, dialect)
    )
    # SQLite's planner prefers the key's bucket range to the index by group, which reads
    # every group's rows of the window; told, it reads the top groups' rows only.
    indexed = by_group and spec.table in GROUP_INDEX
    hint = dialect.hint(GROUP_INDEX[spec.table]) if indexed else ""
    return _Counted(f"{spec.table} e{hint}", where, bucket, "SUM(e.n)")


def _from_events(dialect: ReadDialect, request: StatsRequest, by_target: bool) -> _Counted:
    source, where = _scan_source(dialect, request, by_target)
    return _Counted(
        source, where, bucket_start("e.occurred_at", request.width_us, dialect), "COUNT(*)"
    )


def _group_expr(request: StatsRequest, from_rollup: bool) -> str:
    if request.group_by == "target_type":
        return "e.target_type" if from_rollup else "g.target_type"
    if request.group_by == "actor":
        # Events without an actor group under NO_ACTOR, as in the rollup.
        return "e.actor_id" if from_rollup else f"COALESCE(e.actor_id, '{NO_ACTOR}')"
    return f"e.{_GROUP_COLUMN[request.group_by]}"


def _tiles(request: StatsRequest, family: Family) -> list[tuple[str, int, int, int]]:
    """(table, width, lo, hi): the window as whole buckets of the family's rollups."""
    tables = {s.width_us: s.table for s in family}
    return [
        (tables[width], width, lo, hi)
        for width, lo, hi in tile(request.start, request.end, sorted(tables))
    ]


def _top_sql(dialect: ReadDialect, request: StatsRequest, family: Family) -> tuple[str, list[Any]]:
    """The top groups, adding up the family's buckets that tile the window."""
    group = _group_expr(request, from_rollup=True)
    where = _rollup_where(dialect, request.flt)
    parts: list[str] = []
    args: list[Any] = []
    for table, _width, lo, hi in _tiles(request, family):
        parts.append(
            f"SELECT {group} AS k, e.n AS n FROM {table} e"
            f" WHERE {where.text()} AND e.bucket >= ? AND e.bucket < ?"
        )
        args += [*where.args, lo, hi]
    union = " UNION ALL ".join(parts)
    sql = f"SELECT k, SUM(n) AS c FROM ({union}) AS p GROUP BY k ORDER BY c DESC, k LIMIT ?"
    return sql, [*args, request.top]


def _buckets(request: StatsRequest, family: Family) -> list[tuple[str, int]]:
    """(table, bucket start) of every bucket tiling the window."""
    return [
        (table, at)
        for table, width, lo, hi in _tiles(request, family)
        for at in range(lo, hi, width)
    ]


def read_stats(conn: SqlConnection, dialect: ReadDialect, request: StatsRequest) -> StatsResult:
    buckets = (request.end - request.start) // request.width_us
    if request.flt.impossible:
        return StatsResult("rollup", 0, [], [0] * buckets, [])
    plan = plan_stats(request)
    by_target = request.group_by == "target_type"
    if plan.top is not None and plan.groups is not None and plan.totals is not None:
        top_sql, top_args = _top_sql(dialect, request, plan.top)
        groups = _from_rollup(dialect, request, plan.groups, by_group=True)
        totals = _from_rollup(dialect, request, plan.totals)
        group = _group_expr(request, from_rollup=True)
    else:
        groups = _from_events(dialect, request, by_target)
        # Grouped by target type an event counts once per type: totals count events.
        totals = _from_events(dialect, request, False) if by_target else groups
        group = _group_expr(request, from_rollup=False)
        top_sql = (
            f"SELECT {group} AS k, {groups.count} AS c FROM {groups.source}"
            f" WHERE {groups.where.text()} GROUP BY {group} ORDER BY c DESC, k LIMIT ?"
        )
        top_args = [*groups.where.args, request.top]
    top_rows = None
    if plan.top is not None and plan.top[0].dims == ACTOR_DIMS:
        top_rows = top_by_threshold(
            conn,
            _buckets(request, plan.top),
            _rollup_where(dialect, request.flt),
            _group_expr(request, from_rollup=True),
            request.top,
            postgres=dialect.partitioned,
        )
    if top_rows is None:
        top_rows = conn.execute(top_sql, top_args).fetchall()
    totals_rows = conn.execute(
        f"SELECT {totals.bucket} AS b, {totals.count} FROM {totals.source}"
        f" WHERE {totals.where.text()} GROUP BY b",
        totals.where.args,
    ).fetchall()
    bucket_totals = [0] * buckets
    for b, c in totals_rows:
        bucket_totals[(int(b) - request.start) // request.width_us] = int(c)
    keys = [row[0] for row in top_rows]
    series = _series(conn, dialect, request, plan, groups, group, keys) if keys else []
    return StatsResult(
        "rollup" if plan.top is not None else "scan",
        sum(bucket_totals),
        [(_key(request, k), int(c)) for k, c in top_rows],
        bucket_totals,
        series,
    )


def _series(
    conn: SqlConnection,
    dialect: ReadDialect,
    request: StatsRequest,
    plan: StatsPlan,
    groups: _Counted,
    group: str,
    keys: list[Any],
) -> list[list[int]]:
    """The count per bucket of each of ``keys``.

    One row per group, with its buckets (as offsets into the window) and counts as two
    comma-separated lists: an hourly month of ten groups is 7,200 cells, and 7,200 rows
    cost the driver ~1 µs each to hand over, ten rows of text ~0.3 µs per cell. Both
    lists are aggregated in one pass over the same rows, so they are in the same order.
    """
    marks = ",".join("?" * len(keys))
    count, grouping = groups.count, " GROUP BY b, k"
    if _one_row_per_cell(request, plan.groups):
        count, grouping = "e.n", ""  # a row per (bucket, group) already: no sorting
    # Parameters, not literals: PostgreSQL prepares each statement text once.
    offset = "(g.b - CAST(? AS bigint)) / CAST(? AS bigint)"
    lists = f"{_int_list(dialect, offset)}, {_int_list(dialect, 'g.c')}"
    cells = f"SELECT {groups.bucket} AS b, {group} AS k, {count} AS c FROM {groups.source}"
    if plan.groups is not None and plan.groups.table not in GROUP_INDEX:
        # A rollup keyed (tenant, bucket, dims): its window's rows are read once and
        # the top groups kept after grouping. As an index condition, PostgreSQL 15
        # scans the whole window once per group instead (24 ms for ten actions).
        sql = (
            f"WITH g AS MATERIALIZED ({cells} WHERE {groups.where.text()}{grouping})"
            f" SELECT g.k, {lists} FROM g WHERE g.k IN ({marks}) GROUP BY g.k"
        )
        args = [*groups.where.args, request.start, request.width_us, *keys]
    else:
        sql = (
            f"SELECT g.k, {lists} FROM ({cells} WHERE {groups.where.text()}"
            f" AND {group} IN ({marks}){grouping}) AS g GROUP BY g.k"
        )
        args = [request.start, request.width_us, *groups.where.args, *keys]
    width = (request.end - request.start) // request.width_us
    position = {key: i for i, key in enumerate(keys)}
    series = [[0] * width for _ in keys]
    for key, offsets, counts in conn.execute(sql, args).fetchall():
        row = series[position[key]]
        for at, n in zip(orjson.loads(f"[{offsets}]"), orjson.loads(f"[{counts}]"), strict=True):
            row[at] = n
    return series


def _int_list(dialect: ReadDialect, expr: str) -> str:
    """An aggregate: the group's integer values of ``expr`` as text, comma-separated."""
    if dialect.partitioned:
        return f"string_agg(CAST({expr} AS text), ',')"
    return f"group_concat({expr})"


def _one_row_per_cell(request: StatsRequest, spec: RollupSpec | None) -> bool:
    """Does ``spec`` hold exactly one row per bucket of the interval and group?"""
    return (
        spec is not None
        and spec.width_us == request.width_us
        and spec.dims == (_GROUP_COLUMN[request.group_by],)
    )


def _key(request: StatsRequest, key: Any) -> Any:
    if request.group_by == "actor" and key == NO_ACTOR:
        return None
    return key
