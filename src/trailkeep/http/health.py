"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from trailkeep import __version__
from trailkeep.errors import StoreUnavailable, Unavailable
from trailkeep.http.deps import ServicesDep
from trailkeep.http.responses import json_response

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ok", "version": "0.1.0"}}}}
    },
)
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and the writer runs",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "ready",
                        "indexer": {"running": True, "events": 1200, "skipped": 0, "errors": 0},
                    }
                }
            }
        },
        503: {"description": "not ready; the error names the reason"},
    },
)
async def readyz(request: Request, svc: ServicesDep) -> Response:
    if not svc.store.is_ready():
        raise Unavailable("the database writer is not running")
    try:
        await svc.store.ping()
    except StoreUnavailable as exc:
        raise Unavailable(f"database not reachable: {exc.message}") from None
    # The indexer is reported, not required: a lagging or failing indexer delays full
    # text and stats, never ingest or filtered reads.
    # Integrity alarms are reported too (the service still takes and serves events; it
    # only stops signing the tenants named): an operator's signal, not a load balancer's.
    return json_response(
        {
            "status": "ready",
            "indexer": svc.store.indexer_status(),
            "integrity": _integrity(request),
        }
    )


def _integrity(request: Request) -> dict[str, Any]:
    signer = getattr(request.app.state, "signer", None)
    scrubber = getattr(request.app.state, "scrubber", None)
    status = None if scrubber is None else scrubber.status
    return {
        "signing_stopped": {} if signer is None else dict(signer.faults),
        "scrub": None
        if status is None
        else {"passes": status.passes, "checked": status.checked, "alarms": dict(status.alarms)},
    }
