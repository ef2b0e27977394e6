"""FastAPI dependencies: the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trailkeep.auth.principal import Principal
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
