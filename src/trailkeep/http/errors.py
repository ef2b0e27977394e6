"""Exception handlers: every error leaves as the one JSON shape, never a stack trace."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trailkeep.errors import TrailkeepError
from trailkeep.http.responses import error_response, trailkeep_error_response

log = structlog.get_logger("trailkeep.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


async def _trailkeep_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TrailkeepError)
    return trailkeep_error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return error_response(422, "validation_error", "request failed validation", details)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), None, dict(exc.headers or {}))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error", error=repr(exc), exc_info=exc)
    return error_response(500, "internal_error", "internal error; see the server log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(TrailkeepError, _trailkeep_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
