"""The dedupe cache: one run per request id while remembered."""

from __future__ import annotations

import asyncio

import pytest

from services.inference_router.dedupe import DedupeCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_second_delivery_shares_the_first_outcome() -> None:
    cache: DedupeCache[int] = DedupeCache(Clock())
    calls = 0

    async def make() -> int:
        nonlocal calls
        calls += 1
        return 7

    assert await cache.once("r1", 10, make) == (7, False)
    assert await cache.once("r1", 10, make) == (7, True)
    assert calls == 1


async def test_a_delivery_during_the_first_call_waits_for_it() -> None:
    cache: DedupeCache[int] = DedupeCache(Clock())
    gate = asyncio.Event()
    calls = 0

    async def make() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    first = asyncio.create_task(cache.once("r1", 10, make))
    second = asyncio.create_task(cache.once("r1", 10, make))
    await asyncio.sleep(0)
    gate.set()
    assert await first == (1, False)
    assert await second == (1, True)


async def test_ids_are_forgotten_after_their_ttl() -> None:
    clock = Clock()
    cache: DedupeCache[str] = DedupeCache(clock)

    async def make() -> str:
        return "x"

    await cache.once("r1", 5, make)
    await cache.once("r2", 50, make)
    clock.now = 5.0
    assert cache.get("r1") is None
    assert len(cache) == 1
    assert await cache.once("r1", 5, make) == ("x", False)


async def test_a_failed_first_run_is_forgotten() -> None:
    cache: DedupeCache[str] = DedupeCache(Clock())

    async def boom() -> str:
        raise RuntimeError("store away")

    async def make() -> str:
        return "ok"

    with pytest.raises(RuntimeError):
        await cache.once("r1", 10, boom)
    assert await cache.once("r1", 10, make) == ("ok", False)
