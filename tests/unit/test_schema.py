"""EventIn (the ingest schema) and parse_event, including hostile input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.config import Limits
from trailkeep.errors import BadRequest, TrailkeepError, ValidationFailed
from trailkeep.events.checks import check_event
from trailkeep.events.parsing import event_from_object, parse_batch, parse_event
from trailkeep.events.schema import EventIn


def body(**extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"action": "user.login", "actor": {"id": "u1"}}
    value.update(extra)
    return value


def accept(value: dict[str, Any]) -> EventIn:
    """Decode and check an event as ingest does; ValidationFailed if anything is wrong."""
    event = event_from_object(value)
    problems = check_event(event, Limits())
    if problems:
        raise ValidationFailed("event failed validation", details=problems)
    return event


def locs(exc: ValidationFailed) -> list[tuple[Any, ...]]:
    return [tuple(problem["loc"]) for problem in exc.details]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("LOW", "INFO"),
        ("MEDIUM", "WARNING"),
        ("HIGH", "ERROR"),
        ("low", "INFO"),
        ("medium", "WARNING"),
        ("high", "ERROR"),
        ("debug", "DEBUG"),
        ("Notice", "NOTICE"),
        ("warning", "WARNING"),
        ("error", "ERROR"),
        ("critical", "CRITICAL"),
        ("CRITICAL", "CRITICAL"),
    ],
)
def test_severity_aliases_and_case(sent: str, stored: str) -> None:
    assert accept(body(severity=sent)).severity == stored


def test_severity_defaults_to_info_and_rejects_unknown() -> None:
    assert accept(body()).severity == "INFO"
    for bad in ("LOUD", "", "INFORMATION", 3, None):
        with pytest.raises(ValidationFailed) as info:
            accept(body(severity=bad))
        assert ("severity",) in locs(info.value)


def test_naive_datetime_is_rejected() -> None:
    for naive in ("2026-01-01T00:00:00", "2026-01-01T00:00:00.123456", "2026-01-01"):
        with pytest.raises(ValidationFailed) as info:
            parse_event(orjson.dumps(body(occurred_at=naive)))
        assert ("occurred_at",) in locs(info.value)


def test_aware_datetime_is_kept_as_the_same_instant() -> None:
    event = parse_event(orjson.dumps(body(occurred_at="2026-03-01T10:00:00+02:00")))
    assert event.occurred_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    z = parse_event(orjson.dumps(body(occurred_at="2026-03-01T08:00:00Z")))
    assert z.occurred_at == event.occurred_at


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"colour": "red"}, ("colour",)),
        ({"actor": {"id": "u", "role": "x"}}, ("actor", "role")),
        ({"targets": [{"type": "t", "id": "1", "size": 3}]}, ("targets", 0, "size")),
        ({"context": {"ip_address": "10.0.0.1", "port": 80}}, ("context", "port")),
        ({"changes": {"before": {}, "diff": {}}}, ("changes", "diff")),
    ],
)
def test_extra_fields_are_rejected(extra: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationFailed) as info:
        accept(body(**extra))
    assert loc in locs(info.value)


def test_batch_envelope_rejects_extra_fields_and_empty_lists() -> None:
    with pytest.raises(ValidationFailed):
        parse_batch(orjson.dumps({"events": [body()], "extra": 1}), 10)
    with pytest.raises(ValidationFailed):
        parse_batch(orjson.dumps({"events": []}), 10)
    assert len(parse_batch(orjson.dumps({"events": [body(), body()]}), 10)) == 2


def test_actor_id_is_required_unless_anonymous() -> None:
    anonymous = accept(body(actor={"type": "anonymous"}))
    assert anonymous.actor.id is None and anonymous.actor.type == "anonymous"
    for kind in ("user", "service", "system", "api_key"):
        with pytest.raises(ValidationFailed):
            accept(body(actor={"type": kind}))
    with pytest.raises(ValidationFailed):
        accept(body(actor={}))
    assert accept(body(actor={"id": "u"})).actor.type == "user"


def test_legacy_resource_fields_come_in_pairs() -> None:
    with pytest.raises(ValidationFailed):
        accept(body(resource_type="invoice"))
    with pytest.raises(ValidationFailed):
        accept(body(resource_id="inv-1"))
    event = accept(body(resource_type="invoice", resource_id="inv-1"))
    assert (event.resource_type, event.resource_id) == ("invoice", "inv-1")


@pytest.mark.parametrize(
    "extra",
    [
        {"action": "bad action"},
        {"action": ""},
        {"action": "a..b"},
        {"id": "has space"},
        {"outcome": "maybe"},
        {"context": {"ip_address": "999.0.0.1"}},
        {"message": "nul\x00"},
        {"targets": [{"type": "", "id": "1"}]},
        {"metadata": [1, 2]},
        {"changes": {"before": [1]}},
    ],
)
def test_invalid_fields(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        accept(body(**extra))


def test_ip_addresses_are_normalised() -> None:
    event = accept(body(context={"ip_address": "2001:DB8:0::1"}))
    assert event.context is not None and event.context.ip_address == "2001:db8::1"


def test_parse_event_error_types() -> None:
    assert parse_event(orjson.dumps(body())).action == "user.login"
    with pytest.raises(BadRequest) as bad:
        parse_event(b"{not json")
    assert bad.value.status == 400
    with pytest.raises(ValidationFailed) as invalid:
        parse_event(orjson.dumps(body(action="bad action")))
    assert invalid.value.status == 422
    assert invalid.value.details[0]["loc"] == ["action"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_do_not_pass(number: bytes) -> None:
    """JSON has no NaN/Infinity (RFC 8259, RFC 8785): they would be stored as null."""
    raw = b'{"action":"a","actor":{"id":"u"},"metadata":{"n":' + number + b"}}"
    try:
        event = parse_event(raw)
    except TrailkeepError as exc:
        assert exc.status in (400, 422)
    else:
        assert check_event(event, Limits()), "a non-finite number was accepted"


# -- hostile input: only ever a TrailkeepError --------------------------------------
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | TEXT
)
JSONISH = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=40,
)
FIELDS = [
    "id",
    "tenant_id",
    "occurred_at",
    "action",
    "actor",
    "targets",
    "resource_type",
    "resource_id",
    "outcome",
    "severity",
    "message",
    "context",
    "changes",
    "metadata",
]
NEAR_VALID = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["a.b", "user.login"]) | JSONISH,
        "actor": st.just({"id": "u"})
        | st.dictionaries(
            st.sampled_from(["id", "type", "name", "email", "x"]), JSONISH, max_size=4
        ),
    },
    optional={name: JSONISH for name in FIELDS if name not in ("action", "actor")},
)


def _only_trailkeep_errors(value: Any) -> None:
    raw = orjson.dumps(value)
    try:
        event = parse_event(raw)
    except TrailkeepError as exc:
        assert 400 <= exc.status < 500
        orjson.dumps(exc.details)  # details must be serialisable into the error body
        return
    assert isinstance(event, EventIn)
    for problem in check_event(event, Limits()):
        assert set(problem) == {"loc", "msg", "type"}


@settings(max_examples=200, deadline=None)
@given(JSONISH)
def test_arbitrary_json_only_raises_trailkeep_errors(value: Any) -> None:
    _only_trailkeep_errors(value)


@settings(max_examples=200, deadline=None)
@given(NEAR_VALID)
def test_near_valid_events_only_raise_trailkeep_errors(value: Any) -> None:
    _only_trailkeep_errors(value)
