"""CursorCodec: signed, filter-bound keyset positions."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.errors import BadRequest, InvalidCursor
from trailkeep.events.cursor import CursorCodec
from trailkeep.query.filter import EventFilter
from trailkeep.store.models import PageKey

SECRET = "a-test-secret-of-at-least-32-chars!!"
FLT = EventFilter("acme", action_prefix="user.", min_severity=3)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET)


@settings(max_examples=200)
@given(
    occurred_at=st.integers(-(2**62), 2**62),
    seq=st.integers(0, 2**62),
)
def test_round_trip(occurred_at: int, seq: int) -> None:
    codec = CursorCodec(SECRET)
    key = PageKey(occurred_at, seq)
    cursor = codec.encode(FLT, key)
    assert codec.decode(FLT, cursor) == key
    assert set(cursor) <= set(B64URL)  # safe in a URL as it is
    assert len(cursor) <= 512


def test_invalid_cursor_is_a_400(codec: CursorCodec) -> None:
    assert issubclass(InvalidCursor, BadRequest)
    assert InvalidCursor.status == 400 and InvalidCursor.code == "invalid_cursor"


def test_same_filter_built_twice_accepts_the_cursor(codec: CursorCodec) -> None:
    cursor = codec.encode(FLT, PageKey(5, 6))
    again = EventFilter("acme", action_prefix="user.", min_severity=3)
    assert codec.decode(again, cursor) == PageKey(5, 6)


def test_every_bit_flip_is_rejected(codec: CursorCodec) -> None:
    raw = _raw(codec.encode(FLT, PageKey(1_700_000_000_000_000, 42)))
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            forged = bytearray(raw)
            forged[index] ^= bit
            with pytest.raises(InvalidCursor):
                codec.decode(FLT, _text(bytes(forged)))


def test_changed_characters_never_move_the_position(codec: CursorCodec) -> None:
    key = PageKey(1_700_000_000_000_000, 42)
    cursor = codec.encode(FLT, key)
    for index in range(len(cursor)):
        for char in "A_z9-":
            if char == cursor[index]:
                continue
            changed = cursor[:index] + char + cursor[index + 1 :]
            with contextlib.suppress(InvalidCursor):
                # The last character may carry only padding bits: then nothing changed.
                assert codec.decode(FLT, changed) == key
                assert index == len(cursor) - 1


def test_rewritten_position_with_old_signature_is_rejected(codec: CursorCodec) -> None:
    raw = _raw(codec.encode(FLT, PageKey(1000, 7)))
    mac, payload = raw[:12], raw[12:]
    assert payload.startswith(b"[1000,7,")
    forged = mac + payload.replace(b"[1000,7,", b"[9000,7,")
    with pytest.raises(InvalidCursor):
        codec.decode(FLT, _text(forged))
    truncated = raw[:-1]
    with pytest.raises(InvalidCursor):
        codec.decode(FLT, _text(truncated))


@pytest.mark.parametrize(
    "other",
    [
        EventFilter("acme"),
        EventFilter("globex", action_prefix="user.", min_severity=3),
        EventFilter("acme", action="user.", min_severity=3),
        EventFilter("acme", action_prefix="user.", min_severity=4),
        EventFilter("acme", action_prefix="user.", min_severity=3, outcome="failure"),
        EventFilter("acme", action_prefix="user.", min_severity=3, occurred_from=0),
        EventFilter("acme", action_prefix="user.", min_severity=3, target_type="document"),
    ],
)
def test_cursor_is_bound_to_its_filter_and_tenant(codec: CursorCodec, other: EventFilter) -> None:
    cursor = codec.encode(FLT, PageKey(1, 2))
    with pytest.raises(InvalidCursor):
        codec.decode(other, cursor)


def test_cursor_of_another_secret_is_rejected(codec: CursorCodec) -> None:
    cursor = CursorCodec("another-secret-of-at-least-32-chars").encode(FLT, PageKey(1, 2))
    with pytest.raises(InvalidCursor):
        codec.decode(FLT, cursor)


@pytest.mark.parametrize("garbage", ["", "=", "A", "AAAA", "!!!!", "é" * 10, "\x00", "A" * 513])
def test_known_garbage_is_rejected(codec: CursorCodec, garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(FLT, garbage)


@settings(max_examples=300)
@given(st.text(max_size=600) | st.text(alphabet=B64URL + "=", max_size=120))
def test_garbage_only_ever_raises_invalid_cursor(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(FLT, garbage)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_invalid_cursor(raw: bytes) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(FLT, _text(raw))
