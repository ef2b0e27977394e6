"""API key tokens: tk_<16 hex key id>_<secret>; only SHA-256 of the secret is stored."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.auth import keys

TOKEN = re.compile(r"^tk_[0-9a-f]{16}_[A-Za-z0-9_-]{20,100}$")
GOOD_ID = "0123456789abcdef"
GOOD_SECRET = "S" * 43


def test_generate_makes_a_well_formed_token() -> None:
    new = keys.generate()
    assert TOKEN.match(new.token)
    assert new.token.startswith(f"tk_{new.key_id}_")
    assert keys.looks_like_api_key(new.token)


def test_generate_parse_matches_round_trip() -> None:
    new = keys.generate()
    parsed = keys.parse(new.token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == new.key_id
    assert new.token == f"tk_{key_id}_{secret}"
    assert keys.matches(secret, new.secret_hash)
    assert new.secret_hash == hashlib.sha256(secret.encode()).digest()
    assert secret not in new.secret_hash.hex()


def test_matches_rejects_other_secrets() -> None:
    new = keys.generate()
    _, secret = keys.parse(new.token) or ("", "")
    assert not keys.matches(secret + "x", new.secret_hash)
    assert not keys.matches(secret[:-1], new.secret_hash)
    assert not keys.matches("", new.secret_hash)
    other = keys.generate()
    assert not keys.matches(secret, other.secret_hash)


def test_generated_keys_are_unique() -> None:
    made = [keys.generate() for _ in range(200)]
    assert len({k.key_id for k in made}) == 200
    assert len({k.token for k in made}) == 200
    assert len({k.secret_hash for k in made}) == 200


@pytest.mark.parametrize(
    "token",
    [
        "",
        "tk_",
        "tk__",
        f"tk_{GOOD_ID}_",
        f"tk_{GOOD_ID}",
        f"tx_{GOOD_ID}_{GOOD_SECRET}",
        f"TK_{GOOD_ID}_{GOOD_SECRET}",
        f"tk_{GOOD_ID.upper()}_{GOOD_SECRET}",
        f"tk_{GOOD_ID[:-1]}_{GOOD_SECRET}",
        f"tk_{GOOD_ID}0_{GOOD_SECRET}",
        f"tk_{GOOD_ID}_{'s' * 19}",
        f"tk_{GOOD_ID}_{'s' * 101}",
        f"tk_{GOOD_ID}_{GOOD_SECRET[:-1]}!",
        f"tk_{GOOD_ID}_{GOOD_SECRET} ",
        f" tk_{GOOD_ID}_{GOOD_SECRET}",
        f"tk_{GOOD_ID}_{GOOD_SECRET[:-2]}é",
        f"tk_{GOOD_ID}_{GOOD_SECRET}\x00",
        f"Bearer tk_{GOOD_ID}_{GOOD_SECRET}",
    ],
)
def test_parse_rejects_malformed_tokens(token: str) -> None:
    assert keys.parse(token) is None


def test_parse_rejects_a_trailing_newline() -> None:
    # "$" in a regex also matches before a final "\n"; a token with one is malformed.
    assert keys.parse(f"tk_{GOOD_ID}_{GOOD_SECRET}\n") is None


def test_parse_accepts_the_extremes_of_the_format() -> None:
    for secret in ("a" * 20, "Z" * 100, "-_" * 10):
        assert keys.parse(f"tk_{GOOD_ID}_{secret}") == (GOOD_ID, secret)


@settings(max_examples=300)
@given(st.text(max_size=200) | st.text(alphabet="tk_0123456789abcdefXYZ-", max_size=140))
def test_parse_never_crashes(token: str) -> None:
    parsed = keys.parse(token)
    assert parsed is None or (
        isinstance(parsed, tuple)
        and len(parsed) == 2
        and TOKEN.match(f"tk_{parsed[0]}_{parsed[1]}")
    )


@settings(max_examples=200)
@given(st.from_regex(TOKEN, fullmatch=True))
def test_parse_accepts_every_well_formed_token(token: str) -> None:
    parsed = keys.parse(token)
    assert parsed is not None
    assert f"tk_{parsed[0]}_{parsed[1]}" == token


@settings(max_examples=100)
@given(st.text(max_size=100), st.text(max_size=100))
def test_matches_is_exact(secret: str, other: str) -> None:
    stored = keys.hash_secret(secret)
    assert keys.matches(secret, stored)
    assert keys.matches(other, stored) == (other == secret)
