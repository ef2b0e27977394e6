"""Reading request bodies with a size cap, so a 10 MB body is refused without buffering it."""

from __future__ import annotations

from starlette.requests import Request

from trailkeep.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


async def read_body(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest("invalid Content-Length header")
        if int(declared) > cap:
            raise PayloadTooLarge(f"request body is larger than {cap} bytes")
    content_type = request.headers.get("content-type", "application/json")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {content_type!r}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"request body is larger than {cap} bytes")
        chunks.append(chunk)
    if size == 0:
        raise BadRequest("request body is empty; expected a JSON object")
    return b"".join(chunks)
