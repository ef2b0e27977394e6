"""Identifier helpers: UUIDv7 (time ordered) and random secrets."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
import uuid


class _RandomPool:
    """Random bytes from the OS, fetched 4 KiB at a time.

    One getrandom() call per id costs more than the rest of uuid7(); a pool keeps the
    same quality of randomness at a fraction of the cost. Not for secrets: keys use
    the secrets module directly.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._offset + n > len(self._buffer):
                self._buffer = os.urandom(4096)
                self._offset = 0
            start = self._offset
            self._offset += n
            return self._buffer[start : self._offset]


_pool = _RandomPool()


def uuid7() -> str:
    """A RFC 9562 UUID version 7: 48-bit millisecond timestamp, then randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(_pool.take(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def random_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


_request_prefix = os.urandom(6).hex()
_request_counter = itertools.count()


def request_id() -> str:
    """A unique id for a request: a per-process random prefix and a counter (cheap)."""
    return f"{_request_prefix}{next(_request_counter):010x}"
