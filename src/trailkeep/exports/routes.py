"""HTTP endpoints of export jobs (tenant_admin and auditor), and seed 001's aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Path, Query
from starlette.responses import RedirectResponse, Response, StreamingResponse

from trailkeep.auth.principal import Permission, Principal, Role
from trailkeep.events.schema import ActorIn, EventIn, TargetIn
from trailkeep.exports.docs_models import ZIP_RESPONSE, ExportList, ExportOut
from trailkeep.exports.request import ExportIn
from trailkeep.http.deps import CurrentPrincipal, ServicesDep, scoped_tenant
from trailkeep.http.error_models import ErrorBody
from trailkeep.http.responses import json_response

router = APIRouter(tags=["exports"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422, 503)
}
ExportId = Annotated[str, Path(min_length=1, max_length=64, description="Export job id")]
TenantParam = Annotated[str | None, Query(description="Platform admins only")]
EXPORT_ACTION = "trailkeep.export.requested"


def _record(principal: Principal, tenant_id: str, job: dict[str, Any]) -> EventIn:
    """The export on record in the tenant's own log: who took which copy, in what form."""
    request = job["request"]
    return EventIn(
        action=EXPORT_ACTION,
        actor=ActorIn(id=principal.subject, type="api_key" if principal.key_id else "user"),
        tenant_id=tenant_id,
        targets=[TargetIn(type="export", id=job["id"])],
        severity="NOTICE",
        message="an export of the log was requested",
        metadata={
            "format": request["format"],
            "q": request["q"],
            "from_seq": request["from_seq"],
            "to_seq": request["to_seq"],
            "filtered": request["filtered"],
            "destination": request["destination"],
        },
    )


@router.post(
    "/v1/exports",
    status_code=202,
    response_model=ExportOut,
    responses=_ERRORS,
    summary="Start an export job (CSV, JSONL or Parquet, with its verification bundle)",
    description=(
        "Checks the request now (query, seq range, destination) and queues the job;"
        " poll `GET /v1/exports/{id}`. The request is recorded as an event"
        f" (`{EXPORT_ACTION}`) in the tenant's log. See docs/exports.md."
    ),
)
async def create_export(body: ExportIn, principal: CurrentPrincipal, svc: ServicesDep) -> Response:
    tenant = await scoped_tenant(principal, svc, body.tenant_id, Permission.EXPORT)
    job = await svc.exports.create(principal, tenant, body)
    # Recorded by the service itself (an auditor may not write events of its own).
    recorder = Principal(principal.subject, tenant, frozenset({Role.WRITER}))
    await svc.events.ingest_one(_record(principal, tenant, job), recorder)
    return json_response(job, status=202, headers={"Location": f"/v1/exports/{job['id']}"})


@router.get(
    "/v1/exports", response_model=ExportList, responses=_ERRORS, summary="Export jobs, newest first"
)
async def list_exports(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.EXPORT)
    return json_response(await svc.exports.list(principal, tenant, cursor, limit))


@router.get(
    "/v1/exports/{export_id}",
    response_model=ExportOut,
    responses=_ERRORS,
    summary="An export job's state",
)
async def get_export(
    export_id: ExportId,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.EXPORT)
    return json_response(await svc.exports.get(principal, tenant, export_id))


@router.delete(
    "/v1/exports/{export_id}",
    response_model=ExportOut,
    responses=_ERRORS,
    summary="Cancel an export job",
)
async def cancel_export(
    export_id: ExportId,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.EXPORT)
    return json_response(await svc.exports.cancel(principal, tenant, export_id))


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while block := handle.read(1 << 20):
            yield block


@router.get(
    "/v1/exports/{export_id}/download",
    responses={**_ERRORS, **ZIP_RESPONSE},
    summary="The export's zip archive: data files and verification bundle",
)
async def download_export(
    export_id: ExportId,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.EXPORT)
    found = await svc.exports.download(principal, tenant, export_id)
    if found.link is not None:
        # Signed for a few minutes; it names no secret, and the access log records only
        # this request's own path.
        return RedirectResponse(found.link, status_code=307, headers={"Cache-Control": "no-store"})
    assert found.file is not None
    return StreamingResponse(
        _chunks(found.file),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{found.filename}"',
            "Content-Length": str(found.size),
            "Cache-Control": "no-store",
        },
    )


# Seed 001's shape, documented aliases of the two endpoints above.
@router.post(
    "/v1/logs/export",
    status_code=202,
    response_model=ExportOut,
    responses=_ERRORS,
    summary="Alias of POST /v1/exports",
)
async def create_export_alias(
    body: ExportIn, principal: CurrentPrincipal, svc: ServicesDep
) -> Response:
    return await create_export(body, principal, svc)


@router.get(
    "/v1/logs/export/{export_id}",
    response_model=ExportOut,
    responses=_ERRORS,
    summary="Alias of GET /v1/exports/{id}",
)
async def get_export_alias(
    export_id: ExportId,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
) -> Response:
    return await get_export(export_id, principal, svc, tenant_id)
