"""While MongoDB is away, a quota check falls back to this copy's own count within
`quota_store_timeout_s` whatever it waits for (a lock, another request's call, a round trip),
and requests that arrive meanwhile do not each wait that long in turn (`Breaker`).

The FerretDB fault test found the case: the cross-copy lock of a rate counter
(runtime/doclocks.py) waited for server selection (5 s) outside the bound, requests queued
behind it on the user's lease, and every request made during a 10 s stop was answered only
when the database came back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.doclocks import DocLocks
from services.ingest.shared_quotas import (
    Breaker,
    MongoCounters,
    MongoSlots,
    SharedWindow,
    StoreDown,
)

TIMEOUT_S = 0.3


class AwayDatabase:
    """Every collection's every call waits forever (a stopped server: pymongo waits for server
    selection); `calls` counts them."""

    def __init__(self) -> None:
        self.calls = 0

    def __getitem__(self, name: str) -> AwayDatabase:
        return self

    def __getattr__(self, name: str) -> Any:
        async def hang(*args: Any, **kwargs: Any) -> None:
            self.calls += 1
            await asyncio.Event().wait()

        return hang


async def test_a_counter_behind_a_cross_copy_lock_falls_back_within_the_bound() -> None:
    db = AwayDatabase()
    counters = MongoCounters(db, TIMEOUT_S, DocLocks(db, on=True, wait_s=TIMEOUT_S))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreDown):
        await counters.add("ondemand|6|1|alice", 1)
    assert loop.time() - started < TIMEOUT_S + 0.2  # the lock's insert is inside the bound


async def test_requests_arriving_while_the_store_is_away_do_not_wait_in_turn() -> None:
    db = AwayDatabase()
    counters = MongoCounters(db, TIMEOUT_S, DocLocks(db, on=True, wait_s=TIMEOUT_S))  # type: ignore[arg-type]
    window = SharedWindow(counters, 60)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # a small limit: every request waits for the exact count, one lease at a time
    results = await asyncio.gather(
        *(window.take("alice", "enqueue", 3) for _ in range(20)), return_exceptions=True
    )
    took = loop.time() - started
    assert all(isinstance(r, StoreDown) for r in results), results
    assert took < 2 * TIMEOUT_S, f"20 requests took {took:.2f} s: they waited in turn"
    assert db.calls <= 2  # one tried the store; the others were told at once


async def test_seats_fall_back_at_once_after_a_timeout_and_try_again_later() -> None:
    now = [100.0]
    db = AwayDatabase()
    slots = MongoSlots(db, TIMEOUT_S)  # type: ignore[arg-type]
    slots.breaker.clock = lambda: now[0]
    with pytest.raises(StoreDown):
        await slots.get("r|a")
    assert db.calls == 1
    with pytest.raises(StoreDown):
        await slots.get("r|b")  # told at once: no call made
    assert db.calls == 1
    now[0] += slots.breaker.open_s
    with pytest.raises(StoreDown):
        await slots.get("r|c")  # tried again
    assert db.calls == 2


async def test_the_breaker_stays_closed_on_answers_and_on_refusals() -> None:
    breaker = Breaker(TIMEOUT_S)

    async def answer() -> int:
        return 1

    async def refuse() -> int:
        raise KeyError("not a store fault")

    assert await breaker.call(answer) == 1
    with pytest.raises(KeyError):
        await breaker.call(refuse)
    assert await breaker.call(answer) == 1  # a refusal is the caller's, not the store's absence
