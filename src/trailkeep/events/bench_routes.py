"""A do-nothing ingest endpoint for bench/ingest.py (enabled by TRAILKEEP_BENCH_ENDPOINTS).

It authenticates, reads the body, parses it and runs ingest's checks (tenant, limits,
time range) exactly like POST /v1/events, then stops: no normalisation, no id, no write.
It is the "do-nothing" baseline of the single-event benchmark, on the same stack.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from trailkeep.auth.principal import Permission
from trailkeep.events.parsing import parse_event
from trailkeep.http.body import read_body
from trailkeep.http.deps import CurrentPrincipal, ServicesDep
from trailkeep.http.responses import json_response

router = APIRouter(prefix="/v1/_bench", include_in_schema=False)


@router.post("/validate", status_code=201)
async def validate_only(
    request: Request, principal: CurrentPrincipal, svc: ServicesDep
) -> Response:
    principal.require(Permission.INGEST)
    body = await read_body(request, svc.settings.limits.max_event_bytes)
    event = parse_event(body)
    await svc.events.check_only(event, principal)
    return json_response({"action": event.action}, 201)
