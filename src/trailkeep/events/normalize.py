"""Turning a validated ``EventIn`` into the stored form (an ``EventDraft``)."""

from __future__ import annotations

from typing import Any

from trailkeep.config import Limits
from trailkeep.events.limits import Problem
from trailkeep.events.schema import SEVERITY_RANK, EventIn
from trailkeep.kit.hashing import digest16
from trailkeep.kit.ids import uuid7
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.timeutil import format_us, to_us
from trailkeep.store.models import EventDraft

_YEAR_US = 365 * 86_400 * 1_000_000
_EPOCH_YEAR = 1970


class EventTooLarge(ValueError):
    pass


def _prune(value: dict[str, Any]) -> dict[str, Any]:
    """Drop absent optional fields so the stored form carries only what was said."""
    return {k: v for k, v in value.items() if v is not None}


def check_occurred(occurred_us: int, received_us: int, limits: Limits) -> Problem | None:
    earliest = (limits.min_occurred_year - _EPOCH_YEAR) * _YEAR_US
    if occurred_us < earliest:
        return {
            "loc": ["occurred_at"],
            "msg": f"before the year {limits.min_occurred_year}",
            "type": "value_error",
        }
    if occurred_us > received_us + limits.max_future_skew_seconds * 1_000_000:
        return {
            "loc": ["occurred_at"],
            "msg": f"more than {limits.max_future_skew_seconds} s in the future",
            "type": "value_error",
        }
    return None


def to_draft(event: EventIn, tenant_id: str, received_us: int, limits: Limits) -> EventDraft:
    """Build the stored document. Raises EventTooLarge beyond ``max_event_bytes``."""
    # The request fingerprint covers exactly what the client said (defaults excluded), so
    # a retry of the same body matches even though occurred_at defaulted to "now".
    request = event.model_dump(mode="json", exclude_none=True, exclude={"tenant_id"})
    request_hash = digest16(dumps_sorted(request))

    occurred_us = to_us(event.occurred_at) if event.occurred_at is not None else received_us
    targets = [_prune(t.model_dump()) for t in event.targets]
    if event.resource_type is not None and event.resource_id is not None:
        targets.append({"type": event.resource_type, "id": event.resource_id})
    event_id = event.id if event.id is not None else uuid7()
    doc: dict[str, Any] = {
        "id": event_id,
        "tenant_id": tenant_id,
        "occurred_at": format_us(occurred_us),
        "received_at": format_us(received_us),
        "action": event.action,
        "actor": _prune(event.actor.model_dump()),
        "targets": targets,
        "outcome": event.outcome,
        "severity": event.severity,
    }
    if event.message is not None:
        doc["message"] = event.message
    if event.context is not None:
        doc["context"] = _prune(event.context.model_dump())
    if event.changes is not None:
        doc["changes"] = _prune(event.changes.model_dump())
    if event.metadata is not None:
        doc["metadata"] = event.metadata
    size = len(dumps_sorted(doc))
    if size > limits.max_event_bytes:
        raise EventTooLarge(f"event is {size} bytes; the limit is {limits.max_event_bytes}")
    return EventDraft(
        tenant_id=tenant_id,
        id=event_id,
        id_supplied=event.id is not None,
        occurred_at=occurred_us,
        received_at=received_us,
        action=event.action,
        actor_id=event.actor.id,
        actor_type=event.actor.type,
        severity=SEVERITY_RANK[event.severity],
        outcome=event.outcome,
        request_hash=request_hash,
        doc=doc,
        targets=list(dict.fromkeys((t["type"], t["id"]) for t in targets)),
    )
