"""HTTP endpoints for a tenant's API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from trailkeep.auth.models import KeyCreate, KeyCreated, KeyList
from trailkeep.auth.principal import Permission, Principal, Role
from trailkeep.errors import Forbidden, NotFound
from trailkeep.http.deps import CurrentPrincipal, ServicesDep
from trailkeep.http.error_models import ErrorBody
from trailkeep.kit.timeutil import format_us
from trailkeep.store.models import ApiKeyRecord

router = APIRouter(prefix="/v1/tenants/{tenant_id}/api-keys", tags=["api keys"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422)
}


def key_out(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tenant_id": record.tenant_id,
        "role": record.role,
        "name": record.name,
        "created_at": format_us(record.created_at),
        "revoked_at": format_us(record.revoked_at) if record.revoked_at else None,
        "last_used_at": format_us(record.last_used_at) if record.last_used_at else None,
    }


async def _scope(principal: Principal, tenant_id: str, svc: ServicesDep) -> None:
    principal.require(Permission.MANAGE_KEYS)
    if not principal.is_platform_admin and principal.tenant_id != tenant_id:
        raise NotFound(f"tenant '{tenant_id}' not found")
    await svc.tenants.get(tenant_id)


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    responses=_ERRORS,
    summary="Create an API key (the secret is shown once)",
)
async def create_key(
    tenant_id: str, body: KeyCreate, principal: CurrentPrincipal, svc: ServicesDep
) -> Any:
    await _scope(principal, tenant_id, svc)
    if body.role == Role.ADMIN:
        raise Forbidden("tenant keys cannot have the platform 'admin' role")
    created = await svc.auth.create_key(tenant_id, body.role, body.name)
    return {**key_out(created.record), "token": created.token}


@router.get("", response_model=KeyList, responses=_ERRORS, summary="List a tenant's API keys")
async def list_keys(tenant_id: str, principal: CurrentPrincipal, svc: ServicesDep) -> Any:
    await _scope(principal, tenant_id, svc)
    return {"data": [key_out(k) for k in await svc.auth.list_keys(tenant_id)]}


@router.delete("/{key_id}", status_code=204, responses=_ERRORS, summary="Revoke an API key")
async def revoke_key(
    tenant_id: str, key_id: str, principal: CurrentPrincipal, svc: ServicesDep
) -> Response:
    await _scope(principal, tenant_id, svc)
    await svc.auth.revoke_key(key_id, tenant_id)
    return Response(status_code=204)
