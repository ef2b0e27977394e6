"""Ingest and read events. HTTP-agnostic: routes hand it parsed input and a principal."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from trailkeep.auth.principal import Permission, Principal
from trailkeep.config import Limits
from trailkeep.errors import (
    Gone,
    IdempotencyConflict,
    NotFound,
    PayloadTooLarge,
    TrailkeepError,
    Unavailable,
    ValidationFailed,
)
from trailkeep.events.checks import check_event
from trailkeep.events.cursor import CursorCodec
from trailkeep.events.normalize import (
    EventNotCanonical,
    EventTooLarge,
    check_occurred,
    to_draft,
)
from trailkeep.events.parsing import parse_batch
from trailkeep.events.schema import EventIn
from trailkeep.integrity.proofs import leaf_hashes
from trailkeep.kit.query_ast import Term
from trailkeep.kit.text import check_text
from trailkeep.kit.timeutil import format_us, now_us, to_us
from trailkeep.privacy.service import PrivacyService
from trailkeep.query.filter import EventFilter
from trailkeep.store.models import AppendResult, EventDraft, EventRow, PageKey, Tombstone
from trailkeep.store.protocol import Store
from trailkeep.tenants.service import TenantService


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
    redacted: list[str] | None = None  # field paths the redaction rules changed


@dataclass(slots=True)
class Page:
    rows: list[EventRow]
    next_cursor: str | None
    # Full-text pages: every event with a lower seq was searchable (the indexer's
    # position, read before the search); None for pages without free text.
    indexed_to_seq: int | None = None


def _storable_id(event_id: str, max_length: int) -> bool:
    if len(event_id) > max_length:
        return False
    try:
        check_text(event_id)
    except ValueError:
        return False
    return True


class EventService:
    def __init__(
        self,
        store: Store,
        tenants: TenantService,
        limits: Limits,
        cursors: CursorCodec,
        privacy: PrivacyService,
        merkle: bool = True,
    ) -> None:
        self._store = store
        self._privacy = privacy
        self._merkle = merkle  # False only in bench/ingest.py's baseline
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
        problems = check_event(event, self._limits)
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
            return to_draft(
                event, tenant_id, received, self._limits, received_text, check_jcs=self._merkle
            )
        except EventTooLarge as exc:
            raise PayloadTooLarge(str(exc), details={"field": "event"}) from None
        except EventNotCanonical as exc:
            raise ValidationFailed(
                "event failed validation",
                details=[{"loc": ["event"], "msg": str(exc), "type": "value_error"}],
            ) from None

    async def check_only(self, event: EventIn, principal: Principal) -> None:
        """Ingest's checks (tenant, schema limits, time range) and nothing else: the
        do-nothing baseline of bench/ingest.py. No normalisation, no id, no write."""
        await self._tenant_for(event, principal, set())
        self.validate(event, now_us())

    async def ingest_one(
        self, event: EventIn, principal: Principal
    ) -> tuple[AppendResult, list[str]]:
        """The stored event (as ``principal`` may see it) and the field paths redacted."""
        received = now_us()
        draft = await self._prepare(event, principal, received, format_us(received), set())
        (redacted,) = await self._privacy.protect(draft.tenant_id, [draft])
        (result,) = await self._store.append_events([draft])
        if result.status == "conflict":
            raise IdempotencyConflict(
                f"event id '{draft.id}' was already used with a different body"
                if result.body
                else f"event id '{draft.id}' was used by an event that retention has pruned",
                details={"id": draft.id, "seq": result.seq},
            )
        (shown,) = await self._privacy.present(principal, draft.tenant_id, [result.body])
        return replace(result, body=shown), redacted

    def parse_batch(self, body: bytes) -> list[EventIn | TrailkeepError]:
        return parse_batch(body, self._limits.max_batch_events)

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
                draft = await self._prepare(item, principal, received, received_text, known_tenants)
                drafts.append(draft)
                draft_owner.append(outcome)
            except Unavailable:
                # The database is down (the tenant check could not run): the whole
                # request is a 503 with Retry-After, not this item "rejected" inside a
                # 200, nor one more connection timeout for each item that follows.
                raise
            except TrailkeepError as exc:
                outcome.error = _located(exc, outcome.index)
        by_tenant: dict[str, list[int]] = {}
        for position, draft in enumerate(drafts):
            by_tenant.setdefault(draft.tenant_id, []).append(position)
        for tenant_id, positions in by_tenant.items():
            group = [drafts[p] for p in positions]
            for p, redacted in zip(
                positions, await self._privacy.protect(tenant_id, group), strict=True
            ):
                draft_owner[p].redacted = redacted
        if drafts:
            results = await self._store.append_events(drafts)
            for owner, result in zip(draft_owner, results, strict=True):
                owner.result = result
        return outcomes

    # -- reading -------------------------------------------------------------------
    async def get(
        self, principal: Principal, tenant: str | None, event_id: str, *, stored: bool = False
    ) -> bytes:
        """The event as ``principal`` may see it, or (``stored``) its stored form: the
        bytes its Merkle leaf hashes, sealed fields as ciphertext."""
        tenant_id = principal.scope(Permission.READ, tenant)
        # An id that ingest would have refused (NUL, lone surrogate, too long) names no
        # stored event; PostgreSQL could not even compare it.
        storable = _storable_id(event_id, self._limits.max_id_length)
        body = await self._store.get_event(tenant_id, event_id) if storable else None
        if body is None:
            tombstone = await self._store.tombstone(tenant_id, event_id) if storable else None
            if tombstone is not None:
                raise Gone(
                    f"event '{event_id}' was pruned by retention ({tombstone.rule});"
                    " its leaf hash stays in the log, so every proof still verifies",
                    details=await self._tombstone_json(tenant_id, tombstone),
                )
            # The same answer whether the id is unknown or belongs to another tenant.
            raise NotFound(f"event '{event_id}' not found")
        if stored:
            return body
        (shown,) = await self._privacy.present(principal, tenant_id, [body])
        return shown

    async def _tombstone_json(self, tenant_id: str, tombstone: Tombstone) -> dict[str, Any]:
        """What a pruned event reads back as (docs/retention.md)."""
        seq = tombstone.seq
        leaf = await self._store.read_tree(tenant_id, partial(leaf_hashes, begin=seq, end=seq + 1))
        rule, _, days = tombstone.rule.partition("=")
        return {
            "id": tombstone.id,
            "seq": seq,
            "leaf_hash": base64.b64encode(leaf).decode("ascii"),
            "pruned_at": format_us(tombstone.pruned_at),
            "policy": {"rule": rule, "kept": days or None},
            "archive_segment": tombstone.segment,
        }

    def cursor_now(self, cursor: str | None) -> int | None:
        """The time relative times resolve against on a page after the first."""
        return self._cursors.pinned_now(cursor) if cursor else None

    async def searchable(self, tenant_id: str, terms: Sequence[Term]) -> list[Term]:
        return await self._privacy.searchable(tenant_id, terms)

    async def list(
        self,
        flt: EventFilter,
        cursor: str | None,
        limit: int,
        resolved_at: int = 0,
        *,
        viewer: Principal | None = None,
    ) -> Page:
        """A page of events; presented for ``viewer`` (privacy/masking.py), or in their
        stored form when ``viewer`` is None."""
        after = self._cursors.decode(flt, cursor) if cursor else None
        indexed = await self._store.indexed_through(flt.tenant_id) if flt.text else None
        rows = await self._store.list_events(flt, after, limit)
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1]
            next_cursor = self._cursors.encode(
                flt, PageKey(last.occurred_at, last.seq), resolved_at
            )
        if viewer is not None and rows:
            shown = await self._privacy.present(viewer, flt.tenant_id, [r.body for r in rows])
            rows = [replace(r, body=b) for r, b in zip(rows, shown, strict=True)]
        return Page(rows, next_cursor, indexed)
