"""Turning a validated ``EventIn`` into the stored form (an ``EventDraft``).

This runs for every ingested event, so it reads model attributes directly instead of
calling ``model_dump`` and serializes the document once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from trailkeep.config import Limits
from trailkeep.events.checks import Problem
from trailkeep.events.schema import EventIn
from trailkeep.kit.canonical import CanonicalizationError, canonical_json, orjson_matches_jcs
from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from trailkeep.kit.hashing import digest16
from trailkeep.kit.ids import uuid7
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.timeutil import format_us, to_us
from trailkeep.store.models import EventDraft

_YEAR_US = 365 * 86_400 * 1_000_000
_EPOCH_YEAR = 1970
# Room for the server-assigned fields added after the size check: "seq", and the id,
# tenant and timestamps when the client did not send them.
_SERVER_FIELDS_BYTES = 256


class EventTooLarge(ValueError):
    pass


class EventNotCanonical(ValueError):
    """The event holds a value RFC 8785 cannot write exactly, so it cannot be hashed."""


def _fields(struct: msgspec.Struct) -> dict[str, Any]:
    """The fields that were given (not None) of a flat struct."""
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not None
    }


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


def _client_document(event: EventIn, occurred_us: int | None) -> dict[str, Any]:
    """What the client said, normalised; the server adds its fields afterwards.

    ``occurred_us`` is the client's ``occurred_at`` in microseconds, if it sent one.
    """
    targets = [_fields(t) for t in event.targets]
    if event.resource_type is not None and event.resource_id is not None:
        targets.append({"type": event.resource_type, "id": event.resource_id})
    doc: dict[str, Any] = {
        "action": event.action,
        "actor": _fields(event.actor),
        "targets": targets,
        "outcome": event.outcome,
        "severity": event.severity,
    }
    if event.id is not None:
        doc["id"] = event.id
    if occurred_us is not None:
        doc["occurred_at"] = format_us(occurred_us)
    if event.message is not None:
        doc["message"] = event.message
    if event.context is not None:
        doc["context"] = _fields(event.context)
    if event.changes is not None:
        doc["changes"] = _fields(event.changes)
    if event.metadata is not None:
        doc["metadata"] = event.metadata
    if event.subject_id is not None:
        doc["subject_id"] = event.subject_id  # privacy/service.py moves it to "subject"
    return doc


def to_draft(
    event: EventIn,
    tenant_id: str,
    received_us: int,
    limits: Limits,
    received_text: str | None = None,
    *,
    check_jcs: bool = True,
) -> EventDraft:
    """Build the stored document. Raises EventTooLarge beyond ``max_event_bytes``.

    ``received_text`` is ``format_us(received_us)``, passed in when a whole batch
    shares one receipt time.
    """
    sent_us = to_us(event.occurred_at) if event.occurred_at is not None else None
    doc = _client_document(event, sent_us)
    # The Merkle leaf hashes the RFC 8785 (JCS) form. orjson writes exactly that for
    # most events (kit/canonical.py says when); the writer then uses orjson too.
    fast = not check_jcs or orjson_matches_jcs(doc)
    if fast:
        client_bytes = dumps_sorted(doc)
    else:
        try:
            client_bytes = canonical_json(doc)
        except CanonicalizationError as exc:
            raise EventNotCanonical(
                f"the event holds a value that canonical JSON cannot represent exactly: {exc}"
                " (integers must lie within ±9007199254740991)"
            ) from None
    # The fingerprint covers exactly what the client said (normalised: severity aliases,
    # UTC times), so a retry of the same body matches even when occurred_at defaulted.
    request_hash = digest16(client_bytes)
    if len(client_bytes) + _SERVER_FIELDS_BYTES > limits.max_event_bytes:
        raise EventTooLarge(
            f"event is {len(client_bytes)} bytes; the limit is {limits.max_event_bytes}"
        )
    occurred_us = sent_us if sent_us is not None else received_us
    received = received_text if received_text is not None else format_us(received_us)
    event_id = event.id if event.id is not None else uuid7()
    doc["id"] = event_id
    doc["tenant_id"] = tenant_id
    doc["received_at"] = received
    if sent_us is None:
        doc["occurred_at"] = received
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
        jcs_by_orjson=fast,
        targets=list(dict.fromkeys((t["type"], t["id"]) for t in doc["targets"])),
    )
