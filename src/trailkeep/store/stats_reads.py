"""Stats: counts over time and the top groups, from rollups when they can answer.

A rollup (rollup_specs.py) answers when its width divides the bucket width, it holds
the grouped dimension, and every filter of the query is on its dimensions. Anything
else (words, actor names, targets, metadata, ...) is counted from the events
themselves: the same three queries over ``events``, bounded by the query timeout.

The three queries: the top N groups over the window; the total per bucket; and the
count per bucket of each top group. The rollup table, or events, is aliased ``e`` with
the same column names, so the filter SQL (event_reads.residual_of) serves both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from trailkeep.kit.query_ast import SeverityMatch, TextMatch
from trailkeep.store.conditions import Where
from trailkeep.store.event_reads import ReadDialect, residual_of
from trailkeep.store.models import EventFilter, StatsRequest, StatsResult
from trailkeep.store.rollup_specs import MAIN_DIMS, NO_ACTOR, ROLLUPS, RollupSpec
from trailkeep.store.search_reads import text_predicate
from trailkeep.store.sql import SqlConnection

_GROUP_COLUMN = {
    "action": "action",
    "severity": "severity",
    "outcome": "outcome",
    "actor": "actor_id",
    "target_type": "target_type",
}
# Query fields each rollup's dimensions can filter on.
_FILTERABLE = {"action": "action", "outcome": "outcome", "actor.id": "actor_id"}


def _served_by(spec: RollupSpec, flt: EventFilter) -> bool:
    dims = set(spec.dims)
    if flt.text or flt.target_type is not None:
        return False
    used = {
        "action": flt.action is not None or bool(flt.action_prefix),
        "severity": flt.min_severity is not None,
        "outcome": flt.outcome is not None,
        "actor_id": flt.actor_id is not None,
    }
    if any(on and name not in dims for name, on in used.items()):
        return False
    for term in flt.conditions:
        if isinstance(term, SeverityMatch):
            column = "severity"
        elif isinstance(term, TextMatch) and term.field in _FILTERABLE:
            column = _FILTERABLE[term.field]
        else:
            return False
        if column not in dims:
            return False
    return True


def choose_rollup(request: StatsRequest) -> RollupSpec | None:
    column = _GROUP_COLUMN[request.group_by]
    for spec in ROLLUPS:
        if (
            request.width_us % spec.width_us == 0
            and column in spec.dims
            and _served_by(spec, request.flt)
        ):
            # ROLLUPS lists hourly before daily: prefer the widest that fits.
            wider = [
                s
                for s in ROLLUPS
                if s.dims == spec.dims
                and s.width_us > spec.width_us
                and request.width_us % s.width_us == 0
            ]
            return wider[0] if wider else spec
    return None


def _source(
    dialect: ReadDialect, request: StatsRequest, spec: RollupSpec | None, by_target: bool
) -> tuple[str, str, str, Where]:
    """(FROM clause, bucket expression, count expression, WHERE) for the request."""
    flt = request.flt
    width = request.width_us
    where = Where()
    where.add("e.tenant_id = ?", flt.tenant_id)
    if spec is not None:
        where.add("e.bucket >= ? AND e.bucket < ?", request.start, request.end)
        plain = replace(flt, occurred_from=None, occurred_to=None)
        where.extend(residual_of(dialect, plain, set()))
        return f"{spec.table} e", bucket_start("e.bucket", width, dialect), "SUM(e.n)", where
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
    return source, bucket_start("e.occurred_at", width, dialect), "COUNT(*)", where


def bucket_start(expr: str, width: int, dialect: ReadDialect) -> str:
    """The start of ``expr``'s bucket: floor, like the writer's Python, also before 1970
    (SQL's % truncates toward zero). psycopg reads a lone % as a placeholder."""
    mod = "%%" if dialect.partitioned else "%"
    return f"({expr} - (({expr} {mod} {width}) + {width}) {mod} {width})"


def _group_expr(request: StatsRequest, spec: RollupSpec | None) -> str:
    if request.group_by == "target_type":
        return "e.target_type" if spec is not None else "g.target_type"
    if request.group_by == "actor":
        # Events without an actor group under NO_ACTOR, as in the rollup.
        return "e.actor_id" if spec is not None else f"COALESCE(e.actor_id, '{NO_ACTOR}')"
    return f"e.{_GROUP_COLUMN[request.group_by]}"


def read_stats(conn: SqlConnection, dialect: ReadDialect, request: StatsRequest) -> StatsResult:
    if request.flt.impossible:
        return StatsResult("rollup", 0, [], {}, {})
    spec = choose_rollup(request)
    by_target = request.group_by == "target_type"
    source, bucket, count, where = _source(dialect, request, spec, by_target)
    group = _group_expr(request, spec)
    # Totals count events: grouped by target type, an event counts once per type, so
    # its totals come from events (or the main rollup of the same width) instead.
    totals_source, totals_where = source, where
    if by_target:
        main = _main_rollup(spec) if spec is not None else None
        totals_source, _, _, totals_where = _source(dialect, request, main, by_target=False)
    top_rows = conn.execute(
        f"SELECT {group} AS k, {count} AS c FROM {source} WHERE {where.text()}"
        f" GROUP BY {group} ORDER BY c DESC, k LIMIT ?",
        [*where.args, request.top],
    ).fetchall()
    totals = {
        int(b): int(c)
        for b, c in conn.execute(
            f"SELECT {bucket} AS b, {count} FROM {totals_source} WHERE {totals_where.text()}"
            " GROUP BY b",
            totals_where.args,
        ).fetchall()
    }
    by_group: dict[tuple[int, Any], int] = {}
    keys = [row[0] for row in top_rows]
    if keys:
        marks = ",".join("?" * len(keys))
        rows = conn.execute(
            f"SELECT {bucket} AS b, {group} AS k, {count} FROM {source}"
            f" WHERE {where.text()} AND {group} IN ({marks}) GROUP BY b, k",
            [*where.args, *keys],
        ).fetchall()
        by_group = {(int(b), _key(request, k)): int(c) for b, k, c in rows}
    return StatsResult(
        "rollup" if spec is not None else "scan",
        sum(totals.values()),
        [(_key(request, k), int(c)) for k, c in top_rows],
        totals,
        by_group,
    )


def _main_rollup(spec: RollupSpec) -> RollupSpec:
    return next(s for s in ROLLUPS if s.dims == MAIN_DIMS and s.width_us == spec.width_us)


def _key(request: StatsRequest, key: Any) -> Any:
    if request.group_by == "actor" and key == NO_ACTOR:
        return None
    return key
