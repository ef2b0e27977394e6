"""kit/ttl_cache.py: reuse within the ttl, one load for concurrent misses, forget."""

from __future__ import annotations

import asyncio

import pytest

from trailkeep.kit.ttl_cache import TtlCache


class Loader:
    def __init__(self, value: object = "v", fail: bool = False) -> None:
        self.calls = 0
        self.value = value
        self.fail = fail
        self.gate = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("database down")
        return self.value


async def _gather_open(cache: TtlCache[str, object], load: Loader, n: int) -> list[object]:
    waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(n)]
    await asyncio.sleep(0)
    load.gate.set()
    return list(await asyncio.gather(*waiters))


def test_concurrent_misses_share_one_load_and_the_value_is_reused() -> None:
    async def run() -> None:
        cache: TtlCache[str, object] = TtlCache(60.0)
        load = Loader()
        assert await _gather_open(cache, load, 64) == ["v"] * 64
        assert load.calls == 1
        assert await cache.get("k", load) == "v" and load.calls == 1

    asyncio.run(run())


def test_a_zero_ttl_keeps_nothing_but_still_shares_a_load_in_flight() -> None:
    async def run() -> None:
        cache: TtlCache[str, object] = TtlCache(0.0)
        load = Loader()
        assert await _gather_open(cache, load, 5) == ["v"] * 5
        assert load.calls == 1
        await cache.get("k", load)
        assert load.calls == 2

    asyncio.run(run())


def test_errors_reach_every_waiter_and_are_not_kept() -> None:
    async def run() -> None:
        cache: TtlCache[str, object] = TtlCache(60.0)
        load = Loader(fail=True)
        waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(3)]
        await asyncio.sleep(0)
        load.gate.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        load.fail = False
        assert await cache.get("k", load) == "v" and load.calls == 2

    asyncio.run(run())


@pytest.mark.parametrize("value, kept", [(True, True), (False, False)])
def test_keep_decides_what_is_reused(value: bool, kept: bool) -> None:
    async def run() -> None:
        cache: TtlCache[str, object] = TtlCache(60.0, keep=bool)
        load = Loader(value)
        load.gate.set()
        await cache.get("k", load)
        await cache.get("k", load)
        assert load.calls == (1 if kept else 2)

    asyncio.run(run())


def test_a_load_in_flight_when_forgotten_is_not_kept() -> None:
    async def run() -> None:
        cache: TtlCache[str, object] = TtlCache(60.0)
        load = Loader()
        waiter = asyncio.ensure_future(cache.get("k", load))
        await asyncio.sleep(0)
        cache.forget("k")  # e.g. the tenant was deleted meanwhile
        load.gate.set()
        assert await waiter == "v"
        load.value = "fresh"
        assert await cache.get("k", load) == "fresh" and load.calls == 2

    asyncio.run(run())


def test_one_waiter_cancelled_does_not_cancel_the_others() -> None:
    async def run() -> None:
        cache: TtlCache[str, object] = TtlCache(60.0)
        load = Loader()
        first = asyncio.ensure_future(cache.get("k", load))
        second = asyncio.ensure_future(cache.get("k", load))
        await asyncio.sleep(0)
        first.cancel()
        load.gate.set()
        assert await second == "v"
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(run())
