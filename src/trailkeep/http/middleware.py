"""Request ids and access logs, as plain ASGI middleware (cheaper than BaseHTTPMiddleware)."""

from __future__ import annotations

import re
import time

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trailkeep.http.responses import error_response
from trailkeep.kit.ids import request_id as new_request_id
from trailkeep.logs import request_id_var

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = structlog.get_logger("trailkeep.access")
error_log = structlog.get_logger("trailkeep.http")
# The access log's status of a request whose client went away (nginx's convention).
CLIENT_CLOSED = 499


class RequestContext:
    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _CLIENT_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = new_request_id()
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away before its request body was complete (a timeout, a
            # cancelled upload): nobody is left to answer and nothing of it was stored.
            status = CLIENT_CLOSED
            error_log.info(
                "client disconnected before the request was read",
                method=scope["method"],
                path=scope["path"],
            )
        except Exception as exc:
            # Answer unexpected errors here, inside the request context, so the 500 still
            # carries the request id (Starlette's outermost handler would run without it).
            error_log.error("unhandled error", error=repr(exc), exc_info=exc)
            if response_started:
                raise
            response = error_response(500, "internal_error", "internal error; see the server log")
            await response(scope, receive, send_with_id)
        finally:
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
            request_id_var.reset(token)
