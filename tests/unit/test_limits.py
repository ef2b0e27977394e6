"""check_event: the configurable caps, each reported with the field it concerns."""

from __future__ import annotations

from typing import Any

import pytest

from trailkeep.config import Limits
from trailkeep.events.checks import MAX_SAFE_INTEGER, check_event
from trailkeep.events.parsing import event_from_object
from trailkeep.events.schema import EventIn

LIMITS = Limits(
    max_event_bytes=4096,
    max_batch_events=10,
    max_batch_bytes=8192,
    max_id_length=20,
    max_action_length=16,
    max_name_length=12,
    max_message_length=40,
    max_targets=3,
    max_metadata_bytes=200,
    max_metadata_depth=4,
    max_metadata_keys=10,
    max_changes_bytes=300,
)


def ev(**extra: Any) -> EventIn:
    body: dict[str, Any] = {"action": "a.b", "actor": {"id": "u1"}}
    body.update(extra)
    return event_from_object(body)


def locs(event: EventIn, limits: Limits = LIMITS) -> list[list[Any]]:
    problems = check_event(event, limits)
    for problem in problems:
        assert set(problem) == {"loc", "msg", "type"}
        assert isinstance(problem["msg"], str) and problem["msg"]
    return [p["loc"] for p in problems]


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def test_a_modest_event_passes() -> None:
    event = ev(
        id="evt-1",
        message="hello",
        targets=[{"type": "doc", "id": "d1", "name": "Plan"}],
        context={"request_id": "r1", "location": "Paris"},
        metadata={"plan": "pro", "n": 3, "tags": ["a", "b"]},
        changes={"before": {"t": 1}, "after": {"t": 2}},
    )
    assert check_event(event, LIMITS) == []


def test_the_configured_limits_are_the_ones_applied() -> None:
    event = ev(message="x" * 100)
    assert locs(event) == [["message"]]
    assert locs(event, LIMITS.model_copy(update={"max_message_length": 100})) == []


def test_depth() -> None:
    assert locs(ev(metadata=nested(2))) == []
    deep = locs(ev(metadata=nested(LIMITS.max_metadata_depth + 3)))
    assert len(deep) == 1 and deep[0][0] == "metadata"
    deep_list: Any = 1
    for _ in range(LIMITS.max_metadata_depth + 3):
        deep_list = [deep_list]
    assert [loc[0] for loc in locs(ev(metadata={"l": deep_list}))] == ["metadata"]
    assert [loc[0] for loc in locs(ev(changes={"after": nested(10)}))] == ["changes"]


def test_hostile_depth_is_cheap_and_reported_once() -> None:
    value: Any = "x"
    for _ in range(500):
        value = {"k": value}
    roomy = LIMITS.model_copy(update={"max_metadata_bytes": 10**6})
    assert len(locs(ev(metadata=value), roomy)) == 1


def test_key_count_counts_all_levels() -> None:
    at_cap = {"outer": {f"k{i}": i for i in range(LIMITS.max_metadata_keys - 1)}}
    assert locs(ev(metadata=at_cap)) == []
    over = {"outer": {f"k{i}": i for i in range(LIMITS.max_metadata_keys)}}
    assert locs(ev(metadata=over)) == [["metadata"]]
    flat_over = {f"k{i}": i for i in range(LIMITS.max_metadata_keys + 1)}
    assert locs(ev(metadata=flat_over)) == [["metadata"]]


def test_long_keys() -> None:
    big = LIMITS.model_copy(update={"max_metadata_bytes": 10_000})
    assert locs(ev(metadata={"k" * 256: 1}), big) == []
    assert [loc[0] for loc in locs(ev(metadata={"k" * 257: 1}), big)] == ["metadata"]


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -(MAX_SAFE_INTEGER + 1), 2**64, -(2**70)])
def test_big_integers_are_refused(value: int) -> None:
    assert locs(ev(metadata={"n": value})) == [["metadata", "n"]]
    assert locs(ev(metadata={"l": [0, {"n": value}]})) == [["metadata", "l", 1, "n"]]
    assert locs(ev(changes={"after": {"n": value}})) == [["changes", "after", "n"]]


@pytest.mark.parametrize("value", [1.5e300, 5.2775053738783674e17, float(2**53), -1e16])
def test_floats_beyond_the_exact_range_are_refused(value: float) -> None:
    """I-JSON: every number beyond ±(2**53-1), integer or not (RFC 8785 writes such a
    float without an exponent, and parsers then read an inexact integer)."""
    assert locs(ev(metadata={"n": value})) == [["metadata", "n"]]
    assert locs(ev(changes={"after": {"n": value}})) == [["changes", "after", "n"]]


@pytest.mark.parametrize(
    "value", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, True, 4.5e15, 1e-300, -0.5]
)
def test_safe_numbers_pass(value: Any) -> None:
    assert locs(ev(metadata={"n": value})) == []


def test_nul_in_keys_and_values() -> None:
    assert locs(ev(metadata={"a\x00": 1})) == [["metadata", "a\x00"]]
    assert locs(ev(metadata={"a": "x\x00y"})) == [["metadata", "a"]]
    assert locs(ev(metadata={"a": ["ok", "\x00"]})) == [["metadata", "a", 1]]
    assert locs(ev(changes={"before": {"t": "\x00"}})) == [["changes", "before", "t"]]
    assert locs(ev(changes={"after": {"\x00": 1}})) == [["changes", "after", "\x00"]]


def test_unpaired_surrogates_in_free_json() -> None:
    assert locs(ev(metadata={"a": "\ud800"})) == [["metadata", "a"]]


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"id": "i" * 21}, ["id"]),
        ({"action": "a" * 17}, ["action"]),
        ({"message": "m" * 41}, ["message"]),
        ({"actor": {"id": "u" * 13}}, ["actor", "id"]),
        ({"actor": {"id": "u", "name": "n" * 13}}, ["actor", "name"]),
        ({"actor": {"id": "u", "email": "e" * 13}}, ["actor", "email"]),
        (
            {"targets": [{"type": "t", "id": "i"}, {"type": "t" * 13, "id": "i"}]},
            ["targets", 1, "type"],
        ),
        ({"targets": [{"type": "t", "id": "i" * 13}]}, ["targets", 0, "id"]),
        ({"targets": [{"type": "t", "id": "i", "name": "n" * 13}]}, ["targets", 0, "name"]),
        ({"targets": [{"type": "t", "id": str(i)} for i in range(4)]}, ["targets"]),
        ({"resource_type": "r" * 13, "resource_id": "1"}, ["resource_type"]),
        ({"resource_type": "r", "resource_id": "1" * 13}, ["resource_id"]),
        ({"context": {"request_id": "r" * 13}}, ["context", "request_id"]),
        ({"context": {"session_id": "s" * 13}}, ["context", "session_id"]),
        ({"context": {"location": "l" * 13}}, ["context", "location"]),
        ({"metadata": {"blob": "x" * 250}}, ["metadata"]),
        ({"changes": {"before": {"b": "x" * 200}, "after": {"a": "y" * 200}}}, ["changes"]),
    ],
)
def test_size_caps_name_the_field(extra: dict[str, Any], loc: list[Any]) -> None:
    assert locs(ev(**extra)) == [loc]


@pytest.mark.parametrize(
    "extra",
    [
        {"id": "i" * 20},
        {"action": "a" * 16},
        {"message": "m" * 40},
        {"actor": {"id": "u" * 12, "name": "n" * 12}},
        {"targets": [{"type": "t", "id": str(i)} for i in range(3)]},
        {"metadata": {"blob": "x" * 150}},
    ],
)
def test_exactly_at_the_cap_passes(extra: dict[str, Any]) -> None:
    assert locs(ev(**extra)) == []


def test_several_problems_are_all_reported() -> None:
    found = locs(ev(id="i" * 30, message="m" * 50, actor={"id": "u", "name": "n" * 20}))
    assert found == [["id"], ["message"], ["actor", "name"]]


def test_many_targets_are_reported_once_and_cheaply() -> None:
    targets = [{"type": "t" * 20, "id": str(i)} for i in range(1000)]
    found = locs(ev(targets=targets))
    assert found[0] == ["targets"]
    assert len(found) <= 1 + LIMITS.max_targets
