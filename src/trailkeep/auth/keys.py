"""API key format: ``tk_<16 hex key id>_<secret>``. Only SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a fast hash is enough: nothing can be guessed
from it, and checking a key on every request stays cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_TOKEN = re.compile(r"^tk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    token: str  # shown to the user once
    secret_hash: bytes


def looks_like_api_key(token: str) -> bool:
    return token.startswith("tk_")


def generate() -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"tk_{key_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(token: str) -> tuple[str, str] | None:
    match = _TOKEN.fullmatch(token)
    return None if match is None else (match.group(1), match.group(2))


def matches(secret: str, secret_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
