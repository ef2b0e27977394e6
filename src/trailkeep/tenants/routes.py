"""HTTP endpoints for tenants (platform admins; tenant credentials may read their own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.auth.principal import Permission
from trailkeep.errors import Forbidden, NotFound
from trailkeep.http.deps import CurrentPrincipal, ServicesDep
from trailkeep.http.error_models import ErrorBody
from trailkeep.tenants.models import TenantCreate, TenantList, TenantOut, TenantUpdate
from trailkeep.tenants.service import to_out

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])
_RETENTION_FIELDS = frozenset({"retention", "retention_days", "legal_hold"})
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422)
}


@router.post(
    "", status_code=201, response_model=TenantOut, responses=_ERRORS, summary="Create a tenant"
)
async def create_tenant(body: TenantCreate, principal: CurrentPrincipal, svc: ServicesDep) -> Any:
    principal.require(Permission.MANAGE_TENANTS)
    return to_out(await svc.tenants.create(body, principal.subject))


@router.get("", response_model=TenantList, responses=_ERRORS, summary="List tenants")
async def list_tenants(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    cursor: Annotated[str | None, Query(max_length=64, description="Last id seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    principal.require(Permission.MANAGE_TENANTS)
    records = await svc.tenants.list(cursor, limit)
    next_cursor = records[-1].id if len(records) == limit else None
    return TenantList(data=[to_out(r) for r in records], next_cursor=next_cursor)


def _visible(principal: CurrentPrincipal, tenant_id: str) -> None:
    """A tenant credential sees only its own tenant; any other id is simply not found."""
    principal.require(Permission.VIEW_TENANT)
    if not principal.is_platform_admin and principal.tenant_id != tenant_id:
        raise NotFound(f"tenant '{tenant_id}' not found")


@router.get("/{tenant_id}", response_model=TenantOut, responses=_ERRORS, summary="Read a tenant")
async def get_tenant(tenant_id: str, principal: CurrentPrincipal, svc: ServicesDep) -> Any:
    _visible(principal, tenant_id)
    return to_out(await svc.tenants.get(tenant_id))


@router.patch(
    "/{tenant_id}",
    response_model=TenantOut,
    responses=_ERRORS,
    summary="Update a tenant's settings",
)
async def update_tenant(
    tenant_id: str, body: TenantUpdate, principal: CurrentPrincipal, svc: ServicesDep
) -> Any:
    if not principal.can(Permission.MANAGE_TENANTS):
        # A tenant admin may set its own tenant's privacy and retention settings and
        # legal hold, and nothing else.
        given = body.model_fields_set
        if given - {"privacy", *_RETENTION_FIELDS}:
            raise Forbidden(
                "a tenant credential may change only the tenant's privacy and retention"
                " settings and its legal hold"
            )
        if "privacy" in given:
            principal.require(Permission.MANAGE_PRIVACY)
        if given & _RETENTION_FIELDS:
            principal.require(Permission.MANAGE_RETENTION)
        _visible(principal, tenant_id)
    updated = to_out(await svc.tenants.update(tenant_id, body, principal.subject))
    svc.privacy.forget_policy(tenant_id)
    return updated


@router.delete(
    "/{tenant_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Delete a tenant, its keys and its events (refused under legal hold)",
)
async def delete_tenant(tenant_id: str, principal: CurrentPrincipal, svc: ServicesDep) -> Response:
    principal.require(Permission.MANAGE_TENANTS)
    await svc.tenants.delete(tenant_id)
    svc.auth.forget_tenant_keys()
    return Response(status_code=204)
