"""canonical_json: RFC 8785 bytes, orjson when provably identical, rfc8785 otherwise.

Every expected value below is written from RFC 8785 and also checked against the
rfc8785 package (the reference), so a wrong expectation and a wrong reference both fail.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trailkeep.kit.canonical import CanonicalizationError, canonical_json, orjson_matches_jcs

MAX_INT = 2**53 - 1


def _check(value: Any, expected: bytes) -> None:
    assert rfc8785.dumps(value) == expected
    assert canonical_json(value) == expected


def _orjson(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# -- RFC 8785 examples -------------------------------------------------------------------
def test_rfc8785_section_3_2_2_sample() -> None:
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    _check(json.loads(text), expected)
    # orjson happens to agree on these floats, but not on all: floats take the reference.
    assert _orjson(json.loads(text)) == expected
    assert not orjson_matches_jcs(json.loads(text))


def test_rfc8785_section_3_2_3_key_order() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    _check(value, expected)
    # orjson sorts by code point, the emoji after U+FB33: the key order it gets wrong.
    assert _orjson(value) != expected
    assert not orjson_matches_jcs(value)


@pytest.mark.parametrize(
    ("bits", "expected"),
    [  # RFC 8785 Appendix B: IEEE 754 bit patterns and their JCS form
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),  # minus zero
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
        (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xC340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
        (0x44B52D02C7E14AF6, "1e+23"),
        (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
        (0x444B1AE4D6E2EF4E, "999999999999999700000"),
        (0x444B1AE4D6E2EF4F, "999999999999999900000"),
        (0x444B1AE4D6E2EF50, "1e+21"),
        (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
        (0x3EB0C6F7A0B5ED8D, "0.000001"),
        (0x41B3DE4355555553, "333333333.3333332"),
        (0x41B3DE4355555554, "333333333.33333325"),
        (0x41B3DE4355555555, "333333333.3333333"),
        (0x41B3DE4355555556, "333333333.3333334"),
        (0x41B3DE4355555557, "333333333.33333343"),
        (0xBECBF647612F3696, "-0.0000033333333333333333"),
        (0x43143FF3C1CB0959, "1424953923781206.2"),
    ],
)
def test_rfc8785_appendix_b_numbers(bits: int, expected: str) -> None:
    number = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    _check(number, expected.encode())
    _check([number], f"[{expected}]".encode())


@pytest.mark.parametrize(
    ("number", "expected", "orjson_form"),
    [  # where orjson's float form is not JCS: why every float takes the reference
        (1.0, "1", "1.0"),
        (-0.0, "0", "-0.0"),
        (1e16, "10000000000000000", "1e+16"),
        (1e20, "100000000000000000000", "1e+20"),
        (1e-6, "0.000001", "1e-6"),
        (2.5e-6, "0.0000025", "2.5e-6"),
    ],
)
def test_floats_orjson_gets_wrong(number: float, expected: str, orjson_form: str) -> None:
    _check({"x": number}, f'{{"x":{expected}}}'.encode())
    assert _orjson(number) == orjson_form.encode()
    assert not orjson_matches_jcs({"x": number})


# -- the fast-path condition ------------------------------------------------------------
EVENT: dict[str, Any] = {
    "action": "document.update",
    "actor": {"id": "usr_00042", "type": "user", "name": "Zoë Ng", "email": "zng42@example.com"},
    "changes": {"after": {"title": "Final 7"}, "before": {"title": "Draft 3"}},
    "context": {"ip_address": "203.0.113.9", "request_id": "req_0a1b2c3d4e5f"},
    "id": "0190f0a2-7c4e-7b3a-9c1d-2e3f4a5b6c7d",
    "message": "updated Q3 plan \u2028 \u00e9t\u00e9 \U0001f600 tab\there",
    "metadata": {"count": 3, "nested": [1, None, True, False, -MAX_INT, MAX_INT], "\u00fc": ""},
    "occurred_at": "2026-11-02T09:30:00.000000Z",
    "outcome": "success",
    "received_at": "2026-11-02T09:30:00.012345Z",
    "seq": 41,
    "severity": "INFO",
    "targets": [{"type": "document", "id": "doc_000007", "name": "Q3 plan"}],
    "tenant_id": "acme",
}


def test_a_realistic_event_takes_the_fast_path() -> None:
    assert orjson_matches_jcs(EVENT)
    assert canonical_json(EVENT) == rfc8785.dumps(EVENT) == _orjson(EVENT)


def test_astral_keys_alone_take_the_fast_path() -> None:
    value = {"\U0001f600": 1, "\u00e9": 2, "a\U00010000": 3, "a\ud7ff": 4, "\uffff\U0001f600": 5}
    assert not orjson_matches_jcs({**value, "\ue000": 6})
    value.pop("\uffff\U0001f600")
    assert orjson_matches_jcs(value)
    assert canonical_json(value) == rfc8785.dumps(value) == _orjson(value)


def test_high_bmp_and_astral_keys_take_the_reference() -> None:
    value = {"\ue000": 1, "\U0001f600": 2}
    assert not orjson_matches_jcs(value)
    assert canonical_json(value) == '{"\U0001f600":2,"\ue000":1}'.encode()
    assert _orjson(value) == '{"\ue000":1,"\U0001f600":2}'.encode()


def test_every_unicode_scalar_value_is_escaped_alike() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    value = {text: text}
    assert orjson_matches_jcs(value)
    assert _orjson(value) == rfc8785.dumps(value)
    escapes = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    for c in range(0x20):
        form = escapes.get(chr(c), f"\\u{c:04x}")
        _check(chr(c), f'"{form}"'.encode())
    for raw in ("\x7f", "\u2028", "\u2029", "\ufeff", "/", "'"):
        _check(raw, f'"{raw}"'.encode())
    _check('"\\', b'"\\"\\\\"')


@pytest.mark.parametrize("n", [MAX_INT + 1, -MAX_INT - 1, 2**63, 2**64])
def test_integers_beyond_2_53_are_refused(n: int) -> None:
    assert not orjson_matches_jcs({"n": n})
    with pytest.raises(CanonicalizationError):
        canonical_json({"n": n})


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        [float("inf")],
        {"s": "lone \ud800 surrogate"},
        {"lone \udc00": 1},
        {1: "non-str key"},
        {"when": datetime(2026, 1, 1, tzinfo=UTC)},
        {"set": {1}},
    ],
    ids=["nan", "inf", "surrogate", "surrogate-key", "int-key", "datetime", "set"],
)
def test_what_jcs_cannot_encode_is_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(value)


def test_subclasses_tuples_and_deep_nesting_take_the_reference() -> None:
    class Key(str):
        pass

    deep: Any = "x"
    for _ in range(300):  # beyond orjson's recursion limit
        deep = [deep]
    for value in ({Key("b"): 1, "a": 2}, {"t": (1, "a")}, deep, [True, 1]):
        assert canonical_json(value) == rfc8785.dumps(value)
    assert not orjson_matches_jcs({"t": (1, "a")})
    assert not orjson_matches_jcs(deep)
    assert orjson_matches_jcs([True, 1])


# -- property: canonical_json is rfc8785 -------------------------------------------------
# Characters where the two encoders could part: escapes, U+007F/U+2028, and the key-order
# hazard (U+E000..U+FFFF against characters above the BMP); plus any scalar value.
SPECIAL = (
    '\x00\x01\x08\t\n\x0b\x0c\r\x1f"\\/\x7f\x80\u00e9\u2028\u2029\ud7ff\ue000\ufb33\ufeff'
    "\uffff\U00010000\U0001f600\U0010ffff ab"
)
CHARS = st.sampled_from(SPECIAL) | st.characters(codec="utf-8")
TEXT = st.text(CHARS, max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(-MAX_INT, MAX_INT) | TEXT
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def _json(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=12,
    )


# ~70% of the examples take the fast path (checked with --hypothesis-show-statistics).
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json(SCALARS) | _json(SCALARS | FLOATS))  # half the values without floats
@example({"\ue000": 1, "\U0001f600": [0.1, -0.0, 1e21]})
@example(EVENT)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    reference = rfc8785.dumps(value)
    assert canonical_json(value) == reference
    if orjson_matches_jcs(value):  # the condition is sound, not just the fallback
        assert _orjson(value) == reference
