"""A small async cache for lookups made on every request (API keys, tenants).

A value is reused for ``ttl`` seconds. Concurrent misses of one key share one load: when
an entry expires under load, the requests in flight wait for a single database read
instead of each starting its own (64 clients once meant 64 reads, each a trip through
the thread pool, at every expiry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl: float,
        *,
        keep: Callable[[V], bool] = lambda _value: True,
        max_entries: int = 10_000,
    ) -> None:
        self._ttl = ttl
        self._keep = keep
        self._max_entries = max_entries
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}
        self._forgets = 0  # a load that started before a forget() is not kept

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._values.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        pending = self._loading.get(key)
        if pending is None:
            started, forgets = time.monotonic(), self._forgets
            pending = asyncio.ensure_future(load())
            self._loading[key] = pending
            pending.add_done_callback(lambda done: self._loaded(key, started, forgets, done))
        # One waiter going away (its client disconnected) must not cancel the others' load.
        return await asyncio.shield(pending)

    def _loaded(self, key: K, started: float, forgets: int, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if done.cancelled():
            return
        if done.exception() is not None:  # retrieved here: the waiters re-raise it
            return
        value = done.result()
        if self._ttl > 0 and forgets == self._forgets and self._keep(value):
            if len(self._values) >= self._max_entries:
                self._values.clear()
            self._values[key] = (started, value)

    def clear(self) -> None:
        self._values.clear()
        self._loading.clear()
        self._forgets += 1

    def forget(self, key: K) -> None:
        """Drop ``key`` (e.g. the tenant was deleted); a load in flight is not kept."""
        self._values.pop(key, None)
        self._loading.pop(key, None)
        self._forgets += 1
