"""Hash helpers."""

from __future__ import annotations

import hashlib


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest16(data: bytes) -> bytes:
    """A short, collision-resistant fingerprint (BLAKE2b-128) for comparing request bodies."""
    return hashlib.blake2b(data, digest_size=16).digest()
