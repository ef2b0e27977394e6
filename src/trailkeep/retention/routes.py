"""HTTP endpoints of retention runs and archives (platform admins and tenant admins;
archives also for auditors), and seed 001's ``DELETE /v1/logs/cleanup`` alias."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from trailkeep.auth.principal import Permission
from trailkeep.http.deps import CurrentPrincipal, ServicesDep, scoped_tenant
from trailkeep.http.error_models import ErrorBody
from trailkeep.http.responses import json_response
from trailkeep.retention.docs_models import (
    RetentionReport,
    RetentionRunList,
    RetentionRunOut,
    SegmentList,
    SegmentOut,
)
from trailkeep.retention.service import run_json, segment_json

router = APIRouter(tags=["retention"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422, 503)
}
TenantParam = Annotated[str | None, Query(description="Platform admins only")]
DryRun = Annotated[bool, Query(description="Report what would be deleted; delete nothing")]
Wait = Annotated[
    bool, Query(description="Answer when the run has finished (200) instead of at once (202)")
]
RunId = Annotated[str, Path(min_length=1, max_length=64)]


_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": RetentionReport, "description": "dry run, or wait=true"},
    **_ERRORS,
}


@router.post(
    "/v1/retention/run",
    status_code=202,
    response_model=RetentionRunOut,
    responses=_RUN_RESPONSES,
    summary="Run the tenant's retention policy (dry_run=true: only report)",
)
async def run_retention(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
    dry_run: DryRun = False,
    wait: Wait = False,
) -> Response:
    scoped = await scoped_tenant(principal, svc, tenant_id, Permission.MANAGE_RETENTION)
    record = await svc.tenants.get(scoped)
    if dry_run:
        return json_response(await svc.retention.dry_run(record))
    run = await svc.retention.start(record, principal.subject)
    task = svc.retention.launch(run, record)
    if wait:
        return json_response(run_json(await asyncio.shield(task)))
    return json_response(run_json(run), status=202)


# Seed 001's path for the same operation.
router.delete(
    "/v1/logs/cleanup",
    status_code=202,
    response_model=RetentionRunOut,
    responses=_RUN_RESPONSES,
    summary="Alias of POST /v1/retention/run",
)(run_retention)


@router.get(
    "/v1/retention/runs",
    response_model=RetentionRunList,
    responses=_ERRORS,
    summary="The tenant's retention runs, newest first",
)
async def list_runs(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.MANAGE_RETENTION)
    runs = await svc.retention.runs(tenant, limit)
    return json_response({"data": [run_json(r) for r in runs]})


@router.get(
    "/v1/retention/runs/{run_id}",
    response_model=RetentionRunOut,
    responses=_ERRORS,
    summary="One retention run: its state and report",
)
async def get_run(
    run_id: RunId, principal: CurrentPrincipal, svc: ServicesDep, tenant_id: TenantParam = None
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.MANAGE_RETENTION)
    return json_response(run_json(await svc.retention.get(tenant, run_id)))


@router.get(
    "/v1/archives",
    response_model=SegmentList,
    responses=_ERRORS,
    summary="The tenant's archive segments (oldest first)",
)
async def list_archives(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
    cursor: Annotated[str | None, Query(max_length=64, description="Last id seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.EXPORT)
    found = await svc.retention.segments(tenant, cursor, limit)
    next_cursor = found[-1].id if len(found) == limit else None
    return json_response({"data": [segment_json(s) for s in found], "next_cursor": next_cursor})


@router.get(
    "/v1/archives/{segment_id}",
    response_model=SegmentOut,
    responses=_ERRORS,
    summary="One archive segment: its seq range, rows, files and their SHA-256",
)
async def get_archive(
    segment_id: RunId, principal: CurrentPrincipal, svc: ServicesDep, tenant_id: TenantParam = None
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.EXPORT)
    return json_response(segment_json(await svc.retention.segment(tenant, segment_id)))
