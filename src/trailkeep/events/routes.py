"""HTTP endpoints for events: ingest (one, batch), read one, list with filters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime
from starlette.responses import Response

from trailkeep.auth.principal import Permission
from trailkeep.errors import BadRequest, Gone
from trailkeep.events.docs_models import BatchResult, EventPage, StoredEvent
from trailkeep.events.parsing import parse_event
from trailkeep.events.service import ItemOutcome
from trailkeep.http.body import read_body
from trailkeep.http.deps import CurrentPrincipal, ServicesDep, scoped_tenant
from trailkeep.http.error_models import ErrorBody
from trailkeep.http.responses import INDEXED_TO_HEADER, JSONBytes, json_response
from trailkeep.kit.event_vocabulary import (
    SEVERITIES,
    SEVERITY_RANK,
    canonical_severity,
    unknown_severity,
)
from trailkeep.kit.jsonutil import dumps
from trailkeep.kit.query_ast import (
    OccurredRange,
    SeverityMatch,
    Term,
    TextMatch,
    TextValue,
)
from trailkeep.kit.query_ast import Query as QueryTerms
from trailkeep.kit.text import check_text
from trailkeep.kit.timeutil import now_us, to_us
from trailkeep.query.compile import event_filter
from trailkeep.query.request import parse_request_query

router = APIRouter(prefix="/v1", tags=["events"])

REDACTED_HEADER = "Trailkeep-Redacted"  # field paths the redaction rules changed
FormParam = Annotated[
    Literal["shown", "stored"],
    Query(
        description="`shown` (default): personal fields decrypted or masked for your role"
        " (docs/privacy.md). `stored`: the stored form, sealed fields as ciphertext: the"
        " bytes whose hash is the event's Merkle leaf, what `trailkeep verify` checks."
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}


def _body_doc(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


@router.post(
    "/events",
    status_code=201,
    summary="Ingest one event",
    description=(
        "Stores one event and answers once it is durable. A retry with the same `id` and "
        "body answers 200 with the stored event; the same `id` with another body is a 409."
    ),
    response_model=StoredEvent,
    responses={200: {"model": StoredEvent, "description": "idempotent replay"}, **_ERRORS},
    openapi_extra=_body_doc("EventIn"),
)
async def post_event(request: Request, principal: CurrentPrincipal, svc: ServicesDep) -> Response:
    principal.require(Permission.INGEST)
    body = await read_body(request, svc.settings.limits.max_event_bytes)
    event = parse_event(body)
    result, redacted = await svc.events.ingest_one(event, principal)
    headers = {REDACTED_HEADER: ",".join(redacted)} if redacted else {}
    if result.status == "duplicate":
        headers["Idempotent-Replayed"] = "true"
        return JSONBytes(result.body, status_code=200, headers=headers)
    return JSONBytes(result.body, status_code=201, headers=headers)


def _item_json(outcome: ItemOutcome) -> dict[str, Any]:
    if outcome.error is not None:
        err = outcome.error
        return {
            "index": outcome.index,
            "status": "rejected",
            "error": {
                "code": err.code,
                "status": err.status,
                "message": err.message,
                "details": err.details,
            },
        }
    result = outcome.result
    assert result is not None
    item: dict[str, Any] = {"index": outcome.index, "status": result.status, "seq": result.seq}
    if outcome.redacted:
        item["redacted"] = outcome.redacted
    if result.status == "conflict":
        item["error"] = {
            "code": "idempotency_conflict",
            "status": 409,
            "message": "id already used with a different body"
            if result.body
            else "id used by an event that retention has pruned",
            "details": None,
        }
    return item


@router.post(
    "/events/batch",
    summary="Ingest up to 1,000 events",
    description=(
        "Answers item by item once every accepted event is durable. Invalid items are "
        "rejected on their own; the rest are stored. Beyond the batch limits: 413."
    ),
    response_model=BatchResult,
    responses=_ERRORS,
    openapi_extra=_body_doc("BatchIn"),
)
async def post_batch(request: Request, principal: CurrentPrincipal, svc: ServicesDep) -> Response:
    principal.require(Permission.INGEST)
    body = await read_body(request, svc.settings.limits.max_batch_bytes)
    items = svc.events.parse_batch(body)
    outcomes = await svc.events.ingest_batch(items, principal)
    results = []
    counts = {"created": 0, "duplicate": 0, "rejected": 0, "conflict": 0}
    for outcome in outcomes:
        item = _item_json(outcome)
        counts[item["status"]] += 1
        if outcome.result is not None:
            item["id"] = outcome.result.id
        results.append(item)
    return json_response(
        {
            "created": counts["created"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"] + counts["conflict"],
            "results": results,
        }
    )


@router.get(
    "/events/{event_id}",
    summary="Read one event",
    response_model=StoredEvent,
    responses=_ERRORS,
)
async def get_event(
    event_id: str,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: Annotated[str | None, Query(description="Platform admins only")] = None,
    form: FormParam = "shown",
) -> Response:
    try:
        body = await svc.events.get(principal, tenant_id, event_id, stored=form == "stored")
    except Gone as gone:
        # The tombstone itself, and the error member every error body has.
        error = {"code": gone.code, "message": gone.message, "details": None}
        return JSONBytes(orjson.dumps({**gone.details, "error": error}), status_code=410)
    return JSONBytes(body)


def _text_param(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 256:
        raise BadRequest(f"query parameter '{name}' is longer than 256 characters")
    try:
        return check_text(value)
    except ValueError as exc:
        raise BadRequest(f"query parameter '{name}' {exc}") from None


def legacy_terms(
    *,
    occurred_after: AwareDatetime | None,
    occurred_before: AwareDatetime | None,
    actor_id: str | None,
    action: str | None,
    target_type: str | None,
    target_id: str | None,
    severity: str | None,
    outcome: str | None,
) -> list[Term]:
    """The separate filter parameters of GET /v1/events, as query terms (ANDed with q)."""
    terms: list[Term] = []
    if occurred_after is not None or occurred_before is not None:
        terms.append(
            OccurredRange(
                to_us(occurred_after) if occurred_after else None,
                to_us(occurred_before) if occurred_before else None,
            )
        )
    action = _text_param("action", action)
    if action is not None:
        prefix = action.endswith("*")
        value = action.rstrip("*") if prefix else action
        if not value:
            raise BadRequest("query parameter 'action' needs at least one character before *")
        terms.append(TextMatch("action", (TextValue(value, prefix),)))
    actor_id = _text_param("actor_id", actor_id)
    if actor_id is not None:
        terms.append(TextMatch("actor.id", (TextValue(actor_id),)))
    if severity is not None:
        name = canonical_severity(severity)
        if name is None:
            raise BadRequest(unknown_severity(severity))
        terms.append(SeverityMatch(tuple(range(SEVERITY_RANK[name], len(SEVERITIES)))))
    if outcome is not None:
        if outcome not in ("success", "failure"):
            raise BadRequest("query parameter 'outcome' must be 'success' or 'failure'")
        terms.append(TextMatch("outcome", (TextValue(outcome),)))
    target_type = _text_param("target_type", target_type)
    target_id = _text_param("target_id", target_id)
    if target_id is not None and target_type is None:
        raise BadRequest("query parameter 'target_id' needs 'target_type' too")
    if target_type is not None:
        terms.append(TextMatch("target.type", (TextValue(target_type),)))
    if target_id is not None:
        terms.append(TextMatch("target.id", (TextValue(target_id),)))
    return terms


@router.get(
    "/events",
    summary="List events, newest first",
    description=(
        "`q` is a query in Trailkeep's query language (docs/query-language.md), e.g. "
        '`action:user.* severity>=WARNING "disk full"`; a query that does not parse is '
        "a 400 `bad_query` whose `details.position` points at the problem. The separate "
        "filters below combine with `q` and each other by AND. `action` is exact, or a "
        "prefix when it ends with `*` (`user.*`). `severity` is a minimum. Pages are "
        "keyset-paginated: pass `next_cursor` back as `cursor` with the same filters."
    ),
    response_model=EventPage,
    responses=_ERRORS,
)
async def list_events(
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: Annotated[str | None, Query(description="Platform admins only")] = None,
    q: Annotated[
        str | None,
        Query(description="Query language", examples=["action:user.* severity>=WARNING"]),
    ] = None,
    occurred_after: Annotated[
        AwareDatetime | None, Query(description="Inclusive, RFC 3339 with offset")
    ] = None,
    occurred_before: Annotated[AwareDatetime | None, Query(description="Exclusive")] = None,
    actor_id: str | None = None,
    action: Annotated[str | None, Query(examples=["user.login", "user.*"])] = None,
    target_type: str | None = None,
    target_id: str | None = None,
    severity: Annotated[str | None, Query(description="Minimum severity")] = None,
    outcome: Annotated[str | None, Query(examples=["failure"])] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    form: FormParam = "shown",
) -> Response:
    scoped = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    resolved_at = svc.events.cursor_now(cursor) or now_us()
    terms = legacy_terms(
        occurred_after=occurred_after,
        occurred_before=occurred_before,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        severity=severity,
        outcome=outcome,
    )
    query = parse_request_query(q, resolved_at)
    searched = await svc.events.searchable(scoped, (*terms, *query.terms))
    flt = event_filter(scoped, QueryTerms(tuple(searched)))
    viewer = None if form == "stored" else principal
    page = await svc.events.list(flt, cursor, limit, resolved_at, viewer=viewer)
    # Stored bodies are spliced in as they are: no parse, no re-serialization.
    body = b'{"data":[' + b",".join(r.body for r in page.rows) + b'],"next_cursor":'
    body += dumps(page.next_cursor) + b"}"
    if page.indexed_to_seq is None:
        return JSONBytes(body)
    return JSONBytes(body, headers={INDEXED_TO_HEADER: str(page.indexed_to_seq)})
