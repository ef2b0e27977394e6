"""A fast lane for the ingest endpoints.

FastAPI's routing and dependency resolution cost more per request than parsing,
validating and storing a single event. The ingest endpoints are plain async functions
``(request, principal, services) -> Response``; this ASGI middleware calls those very
functions directly for their exact method and path, and everything else goes on to
FastAPI as usual. The FastAPI routes stay declared, so the OpenAPI document is
unchanged. Errors take the same shape as everywhere else; unexpected exceptions
propagate to the request-context middleware, which answers 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from trailkeep.auth.principal import Principal
from trailkeep.errors import TrailkeepError
from trailkeep.http.deps import bearer_token
from trailkeep.http.responses import trailkeep_error_response
from trailkeep.services import Services

Endpoint = Callable[[Request, Principal, Services], Awaitable[Response]]


class FastLane:
    def __init__(
        self, app: ASGIApp, services: Services, endpoints: dict[tuple[str, str], Endpoint]
    ) -> None:
        self.app = app
        self.services = services
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                request = Request(scope, receive)
                try:
                    principal = await self.services.auth.authenticate(bearer_token(request))
                    response = await endpoint(request, principal, self.services)
                except TrailkeepError as exc:
                    response = trailkeep_error_response(exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
