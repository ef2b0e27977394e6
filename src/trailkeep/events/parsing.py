"""Decoding request bodies into events, and msgspec's errors into our error shape."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from trailkeep.errors import BadRequest, PayloadTooLarge, TrailkeepError, ValidationFailed
from trailkeep.events.checks import Problem
from trailkeep.events.schema import (
    EventIn,
    batch_decoder,
    event_decoder,
    loose_batch_decoder,
)

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
# "Object contains unknown field `x`" / "Object missing required field `x`": the path
# names the object, the field is in the message.
_FIELD = re.compile(r"(?:unknown|required) field `([^`]*)`")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _location(path: str) -> list[Any]:
    loc: list[Any] = []
    for name, index in _STEP.findall(path):
        if name:
            loc.append(name)
        elif index.isdigit():
            loc.append(int(index))
    return loc


def problems_of(exc: msgspec.ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """msgspec reports the first problem as 'message - at `$.a.b[2]`'."""
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any string
    loc = [*prefix, *_location(match["path"] or "")]
    field = _FIELD.search(match["msg"])
    if field is not None:
        loc.append(field.group(1))
    return [{"loc": loc, "msg": match["msg"], "type": "schema"}]


_NOT_JSON = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _not_json(exc: Exception) -> BadRequest:
    if isinstance(exc, RecursionError):
        detail = "JSON nested too deeply"
    elif isinstance(exc, UnicodeDecodeError):
        detail = "body is not valid UTF-8"
    else:
        detail = str(exc)
    return BadRequest(
        "request body is not valid JSON",
        details=[{"loc": [], "msg": detail, "type": "json_invalid"}],
    )


def parse_event(body: bytes) -> EventIn:
    try:
        event: EventIn = event_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ValidationFailed("event failed validation", details=problems_of(exc)) from None
    except _NOT_JSON as exc:
        raise _not_json(exc) from None
    return event


def event_from_object(value: Any) -> EventIn:
    """Validate an already-parsed JSON value as an event (tests, CLI tools)."""
    try:
        event: EventIn = msgspec.convert(value, EventIn)
    except msgspec.ValidationError as exc:
        raise ValidationFailed("event failed validation", details=problems_of(exc)) from None
    return event


def parse_batch(body: bytes, max_events: int) -> list[EventIn | TrailkeepError]:
    """A batch's items: each an event, or the error that rejects that item alone."""
    try:
        events: list[EventIn] = batch_decoder.decode(body).events
    except msgspec.ValidationError:  # (a subclass of DecodeError: catch it first)
        return _parse_items(body, max_events)
    except _NOT_JSON as exc:
        raise _not_json(exc) from None
    if len(events) > max_events:
        raise PayloadTooLarge(f"a batch holds at most {max_events} events", {"field": "events"})
    return list(events)


def _parse_items(body: bytes, max_events: int) -> list[EventIn | TrailkeepError]:
    """Slow path: some item is invalid. Keep each item's raw JSON and decode it alone."""
    try:
        # Malformed JSON is a 400 for the whole body, whatever the schema would say first.
        # Decoded as Raw: the syntax is checked, no value is converted, so an item's number
        # out of range (1e400) stays that item's 422 below, not the whole batch's 400.
        msgspec.json.decode(body, type=msgspec.Raw)
    except _NOT_JSON as exc:
        raise _not_json(exc) from None
    try:
        raw_items = loose_batch_decoder.decode(body).events
    except msgspec.ValidationError as exc:
        raise ValidationFailed('batch body must be {"events": [...]}', problems_of(exc)) from None
    if len(raw_items) > max_events:
        raise PayloadTooLarge(f"a batch holds at most {max_events} events", {"field": "events"})
    parsed: list[EventIn | TrailkeepError] = []
    for index, raw in enumerate(raw_items):
        try:
            parsed.append(event_decoder.decode(raw))
        except RecursionError as exc:
            parsed.append(_not_json(exc))
        except msgspec.ValidationError as exc:
            problems = problems_of(exc, ("events", index))
            parsed.append(ValidationFailed("event failed validation", details=problems))
    return parsed
