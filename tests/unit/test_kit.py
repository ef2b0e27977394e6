"""Pure helpers of trailkeep.kit: uuid7, time conversions, sorted JSON."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trailkeep.kit.ids import uuid7
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.timeutil import format_us, from_us, now_us, to_us

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_DT = datetime.min.replace(tzinfo=UTC)
MAX_DT = datetime.max.replace(tzinfo=UTC)
MIN_US = (MIN_DT - EPOCH) // timedelta(microseconds=1)
MAX_US = (MAX_DT - EPOCH) // timedelta(microseconds=1)
RFC3339_US = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


# -- uuid7 ---------------------------------------------------------------------------
def test_uuid7_is_a_valid_version_7_uuid() -> None:
    for _ in range(500):
        text = uuid7()
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # canonical, lower-case, hyphenated
        assert len(text) == 36


def test_uuid7_carries_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(uuid7()).int
    after = time.time_ns() // 1_000_000
    assert before <= value >> 80 <= after


def test_uuid7_is_unique() -> None:
    assert len({uuid7() for _ in range(20_000)}) == 20_000


def test_uuid7_sorts_as_text_by_creation_time_across_milliseconds() -> None:
    made = []
    for _ in range(30):
        made.append(uuid7())
        time.sleep(0.0015)
    assert sorted(made) == made
    assert len(set(made)) == len(made)


# -- time ----------------------------------------------------------------------------
@settings(max_examples=200)
@given(st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=st.just(UTC)))
@example(MIN_DT)
@example(MAX_DT)
@example(EPOCH)
@example(EPOCH - timedelta(microseconds=1))
def test_to_us_from_us_round_trip_whole_range(moment: datetime) -> None:
    us = to_us(moment)
    assert us == (moment - EPOCH) // timedelta(microseconds=1)
    assert from_us(us) == moment
    assert from_us(us).tzinfo is not None


@settings(max_examples=200)
@given(st.integers(min_value=MIN_US, max_value=MAX_US))
def test_from_us_to_us_round_trip_integers(us: int) -> None:
    assert to_us(from_us(us)) == us


@settings(max_examples=200)
@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.timezones(),
    )
)
def test_to_us_is_the_same_instant_in_any_zone(moment: datetime) -> None:
    assert to_us(moment) == to_us(moment.astimezone(UTC))


@settings(max_examples=200)
@given(st.integers(min_value=MIN_US, max_value=MAX_US))
@example(0)
@example(MIN_US)  # year 1
@example(to_us(datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)))
@example(MAX_US)
def test_format_us_is_27_char_rfc3339_utc(us: int) -> None:
    text = format_us(us)
    assert len(text) == 27
    assert text.endswith("Z")
    assert RFC3339_US.match(text), text
    assert datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC) == from_us(us)


YEAR_1000_US = (datetime(1000, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


@settings(max_examples=200)
@given(
    st.integers(min_value=YEAR_1000_US, max_value=MAX_US),
    st.integers(min_value=YEAR_1000_US, max_value=MAX_US),
)
def test_format_us_sorts_like_the_instant(a: int, b: int) -> None:
    assert (format_us(a) < format_us(b)) == (a < b)


def test_format_us_known_values() -> None:
    assert format_us(0) == "1970-01-01T00:00:00.000000Z"
    assert format_us(1) == "1970-01-01T00:00:00.000001Z"
    assert format_us(-1) == "1969-12-31T23:59:59.999999Z"
    moment = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert format_us(to_us(moment) + 123_456) == "2026-03-01T10:00:00.123456Z"


def test_now_us_is_now() -> None:
    before = time.time_ns() // 1000
    value = now_us()
    after = time.time_ns() // 1000
    assert before <= value <= after


# -- sorted JSON ---------------------------------------------------------------------
KEYS = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


def _keys_sorted_everywhere(value: Any) -> bool:
    if isinstance(value, dict):
        keys = list(value)
        return keys == sorted(keys) and all(_keys_sorted_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(_keys_sorted_everywhere(v) for v in value)
    return True


def test_dumps_sorted_known_value() -> None:
    value = {"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": None}, "A": True}
    assert dumps_sorted(value) == b'{"A":true,"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}'


@settings(max_examples=200)
@given(JSON)
def test_dumps_sorted_sorts_keys_at_every_level(value: Any) -> None:
    encoded = dumps_sorted(value)
    decoded = orjson.loads(encoded)  # orjson keeps the order of the text
    assert decoded == value
    assert _keys_sorted_everywhere(decoded)


@settings(max_examples=200)
@given(st.dictionaries(KEYS, SCALARS, max_size=8))
def test_dumps_sorted_ignores_insertion_order(value: dict[str, Any]) -> None:
    reversed_order = dict(reversed(list(value.items())))
    assert dumps_sorted(reversed_order) == dumps_sorted(value)
