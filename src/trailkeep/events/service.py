"""Ingest and read events. HTTP-agnostic: routes hand it parsed input and a principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from trailkeep.auth.principal import Permission, Principal
from trailkeep.config import Limits
from trailkeep.errors import (
    BadRequest,
    IdempotencyConflict,
    NotFound,
    PayloadTooLarge,
    TrailkeepError,
    ValidationFailed,
)
from trailkeep.events.cursor import CursorCodec
from trailkeep.events.limits import Problem, check_limits
from trailkeep.events.normalize import EventTooLarge, check_occurred, to_draft
from trailkeep.events.schema import BatchIn, EventIn
from trailkeep.kit.timeutil import format_us, now_us, to_us
from trailkeep.store.base import Store
from trailkeep.store.models import AppendResult, EventDraft, EventFilter, EventRow, PageKey
from trailkeep.tenants.service import TenantService


def pydantic_problems(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _is_json_syntax(exc: ValidationError) -> bool:
    return any(err["type"] == "json_invalid" for err in exc.errors(include_url=False))


def parse_event(body: bytes) -> EventIn:
    try:
        return EventIn.model_validate_json(body)
    except ValidationError as exc:
        if _is_json_syntax(exc):
            raise BadRequest(
                "request body is not valid JSON", details=pydantic_problems(exc)
            ) from None
        raise ValidationFailed("event failed validation", details=pydantic_problems(exc)) from None


def _located(exc: TrailkeepError, index: int) -> TrailkeepError:
    """Prefix the field locations of an item's problems with its place in the batch."""
    if isinstance(exc.details, list):
        exc.details = [
            {**p, "loc": ["events", index, *p["loc"]]} if isinstance(p, dict) and "loc" in p else p
            for p in exc.details
        ]
    return exc


@dataclass(slots=True)
class ItemOutcome:
    """One batch item: a stored result, or the error that rejected it."""

    index: int
    result: AppendResult | None = None
    error: TrailkeepError | None = None


@dataclass(slots=True)
class Page:
    rows: list[EventRow]
    next_cursor: str | None


class EventService:
    def __init__(
        self, store: Store, tenants: TenantService, limits: Limits, cursors: CursorCodec
    ) -> None:
        self._store = store
        self._tenants = tenants
        self._limits = limits
        self._cursors = cursors

    # -- ingest --------------------------------------------------------------------
    async def _tenant_for(self, event: EventIn, principal: Principal, known: set[str]) -> str:
        tenant_id = principal.scope(Permission.INGEST, event.tenant_id)
        if tenant_id not in known:
            await self._tenants.require_exists(tenant_id)
            known.add(tenant_id)
        return tenant_id

    def validate(self, event: EventIn, received: int) -> None:
        """The configurable limits and time range; raises ValidationFailed naming fields."""
        problems = check_limits(event, self._limits)
        if event.occurred_at is not None:
            problem = check_occurred(to_us(event.occurred_at), received, self._limits)
            if problem is not None:
                problems.append(problem)
        if problems:
            raise ValidationFailed("event failed validation", details=problems)

    async def _prepare(
        self,
        event: EventIn,
        principal: Principal,
        received: int,
        received_text: str,
        known_tenants: set[str],
    ) -> EventDraft:
        tenant_id = await self._tenant_for(event, principal, known_tenants)
        self.validate(event, received)
        try:
            return to_draft(event, tenant_id, received, self._limits, received_text)
        except EventTooLarge as exc:
            raise PayloadTooLarge(str(exc), details={"field": "event"}) from None

    async def check_only(self, event: EventIn, principal: Principal) -> None:
        """Ingest's checks (tenant, schema limits, time range) and nothing else: the
        do-nothing baseline of bench/ingest.py. No normalisation, no id, no write."""
        await self._tenant_for(event, principal, set())
        self.validate(event, now_us())

    async def ingest_one(self, event: EventIn, principal: Principal) -> AppendResult:
        received = now_us()
        draft = await self._prepare(event, principal, received, format_us(received), set())
        (result,) = await self._store.append_events([draft])
        if result.status == "conflict":
            raise IdempotencyConflict(
                f"event id '{draft.id}' was already used with a different body",
                details={"id": draft.id, "seq": result.seq},
            )
        return result

    def parse_batch(self, body: bytes) -> list[EventIn | TrailkeepError]:
        """Validate a batch envelope; each item is an event or the error that rejects it."""
        cap = self._limits.max_batch_events
        try:
            batch = BatchIn.model_validate_json(body)
        except ValidationError as exc:
            if _is_json_syntax(exc):
                raise BadRequest("request body is not valid JSON", pydantic_problems(exc)) from None
            return self._parse_items(body, cap)
        if len(batch.events) > cap:
            raise PayloadTooLarge(f"a batch holds at most {cap} events", {"field": "events"})
        return list(batch.events)

    def _parse_items(self, body: bytes, cap: int) -> list[EventIn | TrailkeepError]:
        # The same parser as the fast path (pydantic's), so an item's verdict never depends
        # on whether a neighbour was invalid.
        envelope = from_json(body, allow_inf_nan=True)
        if not isinstance(envelope, dict) or set(envelope) != {"events"}:
            raise ValidationFailed(
                "batch body must be an object with exactly one field, 'events'",
                details=[{"loc": ["events"], "msg": "required", "type": "missing"}],
            )
        items = envelope["events"]
        if not isinstance(items, list) or not items:
            raise ValidationFailed(
                "'events' must be a non-empty list",
                details=[{"loc": ["events"], "msg": "must be a non-empty list", "type": "list"}],
            )
        if len(items) > cap:
            raise PayloadTooLarge(f"a batch holds at most {cap} events", {"field": "events"})
        parsed: list[EventIn | TrailkeepError] = []
        for index, item in enumerate(items):
            try:
                parsed.append(EventIn.model_validate(item))
            except ValidationError as exc:
                problems = pydantic_problems(exc, ("events", index))
                parsed.append(ValidationFailed("event failed validation", details=problems))
        return parsed

    async def ingest_batch(
        self, items: list[EventIn | TrailkeepError], principal: Principal
    ) -> list[ItemOutcome]:
        received = now_us()
        received_text = format_us(received)
        known_tenants: set[str] = set()
        outcomes = [ItemOutcome(index) for index in range(len(items))]
        drafts: list[EventDraft] = []
        draft_owner: list[ItemOutcome] = []
        for outcome, item in zip(outcomes, items, strict=True):
            if isinstance(item, TrailkeepError):
                outcome.error = item
                continue
            try:
                draft = await self._prepare(
                    item, principal, received, received_text, known_tenants
                )
                drafts.append(draft)
                draft_owner.append(outcome)
            except TrailkeepError as exc:
                outcome.error = _located(exc, outcome.index)
        if drafts:
            results = await self._store.append_events(drafts)
            for owner, result in zip(draft_owner, results, strict=True):
                owner.result = result
        return outcomes

    # -- reading -------------------------------------------------------------------
    async def get(self, principal: Principal, tenant: str | None, event_id: str) -> bytes:
        tenant_id = principal.scope(Permission.READ, tenant)
        body = await self._store.get_event(tenant_id, event_id)
        if body is None:
            # The same answer whether the id is unknown or belongs to another tenant.
            raise NotFound(f"event '{event_id}' not found")
        return body

    async def list(self, flt: EventFilter, cursor: str | None, limit: int) -> Page:
        after = self._cursors.decode(flt, cursor) if cursor else None
        rows = await self._store.list_events(flt, after, limit)
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1]
            next_cursor = self._cursors.encode(flt, PageKey(last.occurred_at, last.seq))
        return Page(rows, next_cursor)
