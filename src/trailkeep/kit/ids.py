"""Identifier helpers: UUIDv7 (time ordered) and random secrets."""

from __future__ import annotations

import os
import secrets
import time
import uuid


def uuid7() -> str:
    """A RFC 9562 UUID version 7: 48-bit millisecond timestamp, then randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def random_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
