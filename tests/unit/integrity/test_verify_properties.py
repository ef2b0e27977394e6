"""Properties of the offline audit: the fast path is RFC 8785, and no mutation verifies."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.integrity.verify_log import Log, build_log, with_field
from trailkeep.integrity import verify
from trailkeep.integrity.verify import verify_export
from trailkeep.kit.merkle import leaf_hash

_KEYS = st.text(st.sampled_from("ab\u00e9\ue000\uffff\U0001f600\U00010000"), max_size=3)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _spellings(event: dict[str, Any], seed: int) -> list[bytes]:
    """The same JSON value written several ways (key order, escapes, whitespace)."""
    shuffled = list(event.items())
    random.Random(seed).shuffle(shuffled)
    return [
        json.dumps(dict(shuffled)).encode(),
        json.dumps(dict(shuffled), ensure_ascii=False, indent=1).replace("\n", " ").encode(),
    ]


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, seq=st.integers(0, 2**40), seed=st.integers(0, 1000))
def test_the_fast_path_hashes_exactly_the_rfc8785_bytes(value: Any, seq: int, seed: int) -> None:
    event = {"seq": seq, "tenant_id": "acme", "data": value}
    try:
        expected: Any = (1, seq, leaf_hash(rfc8785.dumps(event)))
    except rfc8785.CanonicalizationError:
        expected = "not_canonical"
    for line in _spellings(event, seed):
        (item,) = verify._collect([line], 0, "acme", verify.MAX_LINE_BYTES)
        got = item if isinstance(item, tuple) else getattr(item, "kind", item)
        assert got == expected, line


@pytest.mark.parametrize(
    "literal",
    [b"1.0", b"1E3", b"0.1e1", b"-0.0", b"1.000", b"1e21", b"1e20", b"123456789012345678901.5",
     b"1e-6", b"1e-7", b"0.000001", b"5e-324", b"1.7976931348623157e308", b"-2.5E-10", b"0.1"],
)  # fmt: skip
def test_every_spelling_of_a_float_hashes_as_rfc8785(literal: bytes) -> None:
    line = b'{"seq": 3, "tenant_id": "acme", "x": [' + literal + b', {"y": ' + literal + b"}]}"
    expected = leaf_hash(rfc8785.dumps(orjson.loads(line)))
    assert verify._collect([line], 0, "acme", verify.MAX_LINE_BYTES) == [(1, 3, expected)]


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_hashes_as_rfc8785(value: float) -> None:
    for literal in (repr(value), f"{value:.17e}", f"{value:.17g}"):
        line = b'{"seq": 1, "tenant_id": "acme", "f": ' + literal.encode() + b"}"
        try:  # "9007199254740992" is an integer literal, beyond what JCS takes exactly
            expected: Any = (1, 1, leaf_hash(rfc8785.dumps(json.loads(line))))
        except rfc8785.CanonicalizationError:
            expected = "not_canonical"
        (item,) = verify._collect([line], 0, "acme", 1 << 20)
        assert (item if isinstance(item, tuple) else getattr(item, "kind", item)) == expected


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("small"), 40)


def _is_event(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _mutate(lines: list[bytes], data: st.DataObject) -> list[bytes]:
    """One random change an attacker, a bug or a bad disk could make."""
    if not lines:
        return [data.draw(st.binary(max_size=20).filter(lambda b: b"\n" not in b))]
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    line = lines[i]
    kinds = ["delete", "copy", "insert", "join"]
    kinds += ["flip", "cut"] if line else []
    kinds += ["field", "seq", "tenant"] if _is_event(line) else []
    kinds += ["swap"] if len(lines) > 1 else []
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    out = list(lines)
    if kind == "delete":
        del out[i]
    elif kind == "copy":
        out.insert(data.draw(st.integers(0, len(out))), line)
    elif kind == "swap":
        j = data.draw(st.integers(0, len(out) - 1).filter(lambda j: j != i))
        out[i], out[j] = out[j], out[i]
    elif kind == "flip":
        at = data.draw(st.integers(0, len(line) - 1))
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != line[at]))
        out[i] = line[:at] + bytes([byte]) + line[at + 1 :]
    elif kind == "cut":
        out[i] = line[: data.draw(st.integers(0, len(line) - 1))]
    elif kind == "insert":
        junk = st.binary(min_size=1, max_size=20).filter(lambda b: b"\n" not in b)
        out.insert(i, data.draw(junk))
    elif kind == "field":
        out[i] = with_field(line, **{data.draw(st.sampled_from(["action", "id", "x"])): "evil"})
    elif kind == "seq":
        out[i] = with_field(line, seq=data.draw(st.integers(0, 45)))
    elif kind == "tenant":
        out[i] = with_field(line, tenant_id="globex")
    elif i + 1 < len(out):  # join: a lost newline
        out[i : i + 2] = [out[i] + out[i + 1]]
    return out


def _decoded(data: bytes) -> list[Any]:
    return [orjson.loads(x) for x in data.split(b"\n") if x.strip()]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_mutations_never_verify(small_log: Log, data: st.DataObject) -> None:
    lines = list(small_log.lines)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        lines = _mutate(lines, data)
    raw = b"\n".join(lines) + b"\n"
    report = verify_export(io.BytesIO(raw), small_log.checkpoint)
    if report.ok:
        # Only a change that leaves every event as it was (and in order) may pass.
        try:
            same = _decoded(raw) == [orjson.loads(x) for x in small_log.lines]
        except orjson.JSONDecodeError:
            same = False
        assert same, report.to_json()
