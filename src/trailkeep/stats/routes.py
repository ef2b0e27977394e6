"""GET /v1/stats: counts over time and the top N groups of the events matching q."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.auth.principal import Permission
from trailkeep.http.deps import CurrentPrincipal, ServicesDep, scoped_tenant
from trailkeep.http.error_models import ErrorBody
from trailkeep.http.responses import INDEXED_TO_HEADER, json_response
from trailkeep.kit.query_ast import Query as QueryTerms
from trailkeep.kit.timeutil import now_us
from trailkeep.query.request import parse_request_query
from trailkeep.stats.service import MAX_BUCKETS, Interval
from trailkeep.store.models import StatsGroup

router = APIRouter(prefix="/v1", tags=["stats"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 503)
}


_EXAMPLE = {
    "group_by": "action",
    "interval": "day",
    "from": "2026-01-01T00:00:00.000000Z",
    "to": "2026-01-03T00:00:00.000000Z",
    "source": "rollup",
    "total": 57,
    "top": [{"key": "user.login", "count": 41}, {"key": "document.update", "count": 12}],
    "buckets": [
        {"start": "2026-01-01T00:00:00.000000Z", "count": 30, "counts": [22, 6]},
        {"start": "2026-01-02T00:00:00.000000Z", "count": 27, "counts": [19, 6]},
    ],
}


@router.get(
    "/stats",
    summary="Counts over time and the top groups",
    description=(
        "Counts the events matching `q` per bucket of `interval` (UTC hours or days), "
        "and the `top` groups of `group_by` with their counts over the window and per "
        "bucket (`counts`, aligned with `top`). The window is q's occurred range widened "
        "to whole buckets; without one, the last 30 days. Every bucket is listed, empty "
        f"ones with 0, at most {MAX_BUCKETS:,}. `source` tells whether rollups kept at "
        "ingest answered, or the events were counted (filters no rollup holds: words, "
        "names, targets, metadata, ip)."
    ),
    responses={
        200: {
            "description": "Counts over the window",
            "content": {"application/json": {"example": _EXAMPLE}},
        },
        **_ERRORS,
    },
)
async def get_stats(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    group_by: StatsGroup,
    q: Annotated[str | None, Query(examples=["outcome:failure occurred>=-7d"])] = None,
    interval: Interval = "day",
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    tenant_id: Annotated[str | None, Query(description="Platform admins only")] = None,
) -> Response:
    scoped = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    now = now_us()
    query = parse_request_query(q, now)
    # Terms on sealed fields match by blind index, as in GET /v1/events.
    query = QueryTerms(tuple(await svc.events.searchable(scoped, query.terms)))
    answer = await svc.stats.stats(scoped, query, group_by, interval, top, now)
    return json_response(answer, headers={INDEXED_TO_HEADER: str(answer["indexed_to_seq"])})
