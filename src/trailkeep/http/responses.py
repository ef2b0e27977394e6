"""Fast JSON responses (orjson) and the one error body shape."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from trailkeep.errors import TrailkeepError
from trailkeep.kit.jsonutil import dumps
from trailkeep.logs import request_id_var

# On answers from data derived from the log (full-text pages, stats): every event of the
# tenant with a lower seq is included; later ones may still be on their way (the
# indexer follows the log after commit, docs/operations.md).
INDEXED_TO_HEADER = "Trailkeep-Indexed-To-Seq"


class JSONBytes(Response):
    """A response whose body is already-serialized JSON."""

    media_type = "application/json"


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONBytes(dumps(value), status_code=status, headers=headers)


def trailkeep_error_response(exc: TrailkeepError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": request_id_var.get(),
        }
    }
    return json_response(body, status, headers)
