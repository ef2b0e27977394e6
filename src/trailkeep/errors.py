"""The exception tree. Each error carries its HTTP status and a stable code.

Every error reaches clients as ``{"error": {"code", "message", "details", "request_id"}}``
(see http/errors.py); docs/api.md lists the codes.
"""

from __future__ import annotations

from typing import Any


class TrailkeepError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(TrailkeepError):
    status = 400
    code = "bad_request"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class BadQuery(BadRequest):
    """A query (``q=``) that does not parse; ``details.position`` points at the problem."""

    code = "bad_query"


class QueryTimeout(BadRequest):
    """A read that ran past TRAILKEEP_QUERY_TIMEOUT_MS and was stopped by the database."""

    code = "query_timeout"


class Unauthenticated(TrailkeepError):
    status = 401
    code = "unauthenticated"

    def __init__(self, message: str = "missing or invalid credentials", details: Any = None):
        super().__init__(message, details, {"WWW-Authenticate": "Bearer"})


class Forbidden(TrailkeepError):
    status = 403
    code = "forbidden"


class NotFound(TrailkeepError):
    status = 404
    code = "not_found"


class Conflict(TrailkeepError):
    status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class Gone(TrailkeepError):
    """An event that retention pruned; ``details`` is its tombstone."""

    status = 410
    code = "pruned"


class PayloadTooLarge(TrailkeepError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(TrailkeepError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(TrailkeepError):
    status = 422
    code = "validation_error"


class Unavailable(TrailkeepError):
    status = 503
    code = "unavailable"

    def __init__(self, message: str, details: Any = None, retry_after: int = 1):
        super().__init__(message, details, {"Retry-After": str(retry_after)})


class StoreUnavailable(Unavailable):
    code = "store_unavailable"
