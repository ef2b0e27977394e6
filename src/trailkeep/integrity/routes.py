"""HTTP endpoints of tamper evidence: checkpoints, proofs, the verifier key, tlog-tiles.

All behind the same access control as reading events: a tenant credential reads its
own log; a platform admin names the tenant. docs/integrity.md shows each with examples.
"""

from __future__ import annotations

import base64
import gzip
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from trailkeep.auth.principal import Permission
from trailkeep.errors import BadRequest
from trailkeep.http.deps import CurrentPrincipal, ServicesDep, scoped_tenant
from trailkeep.http.error_models import ErrorBody
from trailkeep.http.responses import json_response
from trailkeep.integrity.docs_models import (
    EXAMPLE_NOTE,
    EXAMPLE_TILE_NOTE,
    CheckpointList,
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    VerifierKeyOut,
    binary_example,
    text_example,
)
from trailkeep.integrity.service import checkpoint_json
from trailkeep.integrity.tlog_proof import MEDIA_TYPE, format_tlog_proof
from trailkeep.kit.tiles import TileError, parse_entries_path, parse_tile_path
from trailkeep.kit.timeutil import now_us

router = APIRouter(prefix="/v1", tags=["integrity"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 503)
}
_MAX_SIZE = 2**63 - 1  # sizes and indices are stored as signed 64-bit integers
TenantParam = Annotated[str | None, Query(description="Platform admins only")]
_NOTE = "text/plain; charset=utf-8"
# A checkpoint changes as the log grows; a tile's hashes never change once served.
_NO_CACHE = {"Cache-Control": "no-cache"}
_IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}


def _wants_note(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        if fmt not in ("json", "note"):
            raise BadRequest("query parameter 'format' must be 'json' or 'note'")
        return fmt == "note"
    accept = request.headers.get("accept", "")
    return accept.startswith("text/plain")


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint of the tenant's log",
    description=(
        "A C2SP tlog-checkpoint in a C2SP signed note (Ed25519), origin"
        " `<log host>/t/<tenant_id>`. JSON by default; the note itself with"
        " `Accept: text/plain` or `format=note`."
    ),
    response_model=CheckpointOut,
    responses={200: text_example(EXAMPLE_NOTE), **_ERRORS},
)
async def get_checkpoint(
    request: Request,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
    format: Annotated[str | None, Query(description="json (default) or note")] = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    record = await svc.integrity.latest(tenant)
    if _wants_note(request, format):
        return Response(record.note, media_type=_NOTE, headers=_NO_CACHE)
    answer = checkpoint_json(record, svc.integrity.key.origin(tenant))
    # How far behind the log the latest checkpoint is, so that a stopped or lagging
    # signer shows (trailkeep verify --server warns on it).
    head = await svc.store.tree_head(tenant)
    answer["log_size"] = head.size
    answer["unsigned_events"] = head.size - record.size
    answer["age_seconds"] = round(max(0, now_us() - record.signed_at) / 1e6, 3)
    stopped = getattr(request.app.state.signer, "faults", {}).get(tenant)
    answer["signing_stopped"] = stopped
    return json_response(answer, headers=_NO_CACHE)


@router.get(
    "/checkpoints",
    summary="Every checkpoint of the tenant's log, newest first",
    description="Checkpoints are kept for ever; page with `before=<next_before>`.",
    response_model=CheckpointList,
    responses=_ERRORS,
)
async def list_checkpoints(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    before: Annotated[int | None, Query(ge=1, le=_MAX_SIZE, description="Sizes below")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    return json_response(await svc.integrity.history(tenant, before, limit), headers=_NO_CACHE)


@router.get(
    "/events/{event_id}/proof",
    summary="Inclusion proof of one event",
    description=(
        "RFC 9162 inclusion proof of the event's leaf (its `seq`) in the tree of `size`"
        " leaves, by default the latest checkpoint's. The leaf is SHA-256(0x00 ||"
        " RFC 8785 bytes of the event as `GET /v1/events/{id}?form=stored` returns it)."
    ),
    response_model=InclusionProofOut,
    responses=_ERRORS,
)
async def get_inclusion_proof(
    event_id: str,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    size: Annotated[int | None, Query(ge=1, le=_MAX_SIZE, description="Tree size")] = None,
    tenant_id: TenantParam = None,
    proof_format: Annotated[
        Literal["json", "tlog-proof"],
        Query(
            alias="format",
            description="`tlog-proof`: a C2SP tlog-proof (text), the event in its extra line",
        ),
    ] = "json",
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    # The same 404 as reading it; the stored form is what the leaf hashes.
    body = await svc.events.get(principal, tenant, event_id, stored=True)
    found = await svc.integrity.inclusion(tenant, event_id, body, size)
    if proof_format == "json":
        return json_response(found)
    if found["checkpoint"] is None:
        raise BadRequest(
            f"size {size} is not a checkpointed tree size: a tlog-proof carries the signed"
            " checkpoint; omit size (the latest) or give one of GET /v1/checkpoints",
            details={"field": "size"},
        )
    text = format_tlog_proof(
        found["seq"], [base64.b64decode(h) for h in found["proof"]], found["checkpoint"], body
    )
    return Response(text, media_type=MEDIA_TYPE)


@router.get(
    "/proofs/consistency",
    summary="Consistency proof between two tree sizes",
    description=(
        "RFC 9162 proof that the tree of `to` leaves (default: the latest checkpoint's)"
        " extends the tree of `from` leaves. `from=0` is a 400: RFC 9162 defines no"
        " proof from the empty tree."
    ),
    response_model=ConsistencyProofOut,
    responses=_ERRORS,
)
async def get_consistency_proof(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    from_size: Annotated[int, Query(alias="from", ge=0, le=_MAX_SIZE)],
    to_size: Annotated[int | None, Query(alias="to", ge=0, le=_MAX_SIZE)] = None,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    return json_response(await svc.integrity.consistency(tenant, from_size, to_size))


@router.get(
    "/integrity/key",
    summary="The verifier key of the tenant's checkpoints",
    description="A C2SP signed-note verifier key (vkey), named after the log's origin.",
    response_model=VerifierKeyOut,
    responses=_ERRORS,
)
async def get_verifier_key(
    principal: CurrentPrincipal, svc: ServicesDep, tenant_id: TenantParam = None
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    return json_response(svc.integrity.key_json(tenant))


@router.get(
    "/tenants/{tenant_id}/log/checkpoint",
    summary="tlog-tiles: the latest checkpoint (signed note)",
    responses={200: text_example(EXAMPLE_NOTE), **_ERRORS},
)
async def get_tiles_checkpoint(
    tenant_id: str, principal: CurrentPrincipal, svc: ServicesDep
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    record = await svc.integrity.latest(tenant)
    return Response(record.note, media_type=_NOTE, headers=_NO_CACHE)


@router.get(
    "/tenants/{tenant_id}/log/tile/{path:path}",
    summary="tlog-tiles: one Merkle tile, or one entry bundle",
    description=(
        "`tile/<L>/<N>[.p/<W>]` as C2SP tlog-tiles names them: the concatenated 32-byte"
        " hashes of tree level 8·L, entries 256·N onwards. `tile/entries/<N>[.p/<W>]`:"
        " the stored events of seqs 256·N onwards, each a big-endian uint16 length and"
        " the bytes its leaf hashes. Each path has one spelling (no leading zeros, no"
        " leading `x000` group); any other is a 400."
    ),
    responses={200: binary_example(EXAMPLE_TILE_NOTE), **_ERRORS},
)
async def get_tile(
    request: Request, tenant_id: str, path: str, principal: CurrentPrincipal, svc: ServicesDep
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    bundle = path.startswith("entries/")
    try:
        if bundle:
            index, width = parse_entries_path(path.removeprefix("entries/"))
        else:
            level, index, width = parse_tile_path(path)
    except TileError as exc:
        raise BadRequest(f"tile path {path[:100]!r}: {exc}") from None
    if bundle:
        data = await svc.integrity.entry_bundle(tenant, index, width)
        # tlog-tiles: entry bundles SHOULD be served compressed (JSON compresses ~4x);
        # hash tiles are random bytes, left as they are.
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers = {**_IMMUTABLE, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(
                gzip.compress(data, compresslevel=6, mtime=0),
                media_type="application/octet-stream",
                headers=headers,
            )
    else:
        data = await svc.integrity.tile(tenant, level, index, width)
    return Response(data, media_type="application/octet-stream", headers=_IMMUTABLE)
