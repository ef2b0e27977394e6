"""FastAPI dependencies: the calling principal, and the tenant a request acts on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trailkeep.auth.principal import Permission, Principal
from trailkeep.services import Services, services


def bearer_token(request: Request) -> str | None:
    """The credential of a request: ``Authorization: Bearer X`` or ``X-API-Key: X``."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.headers.get("x-api-key")


async def principal(request: Request, svc: Annotated[Services, Depends(services)]) -> Principal:
    return await svc.auth.authenticate(bearer_token(request))


CurrentPrincipal = Annotated[Principal, Depends(principal)]
ServicesDep = Annotated[Services, Depends(services)]


async def scoped_tenant(
    principal: Principal, svc: Services, requested: str | None, permission: Permission
) -> str:
    """The tenant a request acts on (Principal.scope); a platform admin's named tenant
    must exist (404), a tenant credential's is its own."""
    tenant_id = principal.scope(permission, requested)
    if principal.is_platform_admin:
        await svc.tenants.require_exists(tenant_id)
    return tenant_id
