"""Data keys held in memory for a short while, so ingest and reads do not unwrap a key
(or read its row) for every event.

A subject's live key is reused for ``ttl`` seconds; so is the answer "this key id was
erased". An erasure in this process forgets at once; one made by another process is
seen here within ``ttl`` (docs/privacy.md). Bounded: past ``max_entries`` it starts
again empty rather than grow.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        """(found, value): ``found`` is False when absent or expired."""
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._max:
            self._items.clear()
        self._items[key] = (time.monotonic() + self._ttl, value)

    def forget(self, keys: list[K]) -> None:
        for key in keys:
            self._items.pop(key, None)
