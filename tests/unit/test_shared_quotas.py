"""The shared rate window's arithmetic (counters in a dict here; MongoDB in integration)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.ingest.shared_quotas import BUCKETS, SharedWindow, lease_size


class DictCounters:
    """Counters as MongoDB keeps them; `reads` counts round trips for closed buckets."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.reads = 0

    async def add(self, key: str, n: int) -> int:
        self.counts[key] = self.counts.get(key, 0) + n
        return self.counts[key]

    async def get_many(self, keys: Sequence[str]) -> dict[str, int]:
        self.reads += 1
        return {k: self.counts[k] for k in keys if k in self.counts}


def two_copies(window_s: float, now: list[float]) -> tuple[SharedWindow, SharedWindow]:
    shared = DictCounters()
    return (
        SharedWindow(shared, window_s, clock=lambda: now[0]),
        SharedWindow(shared, window_s, clock=lambda: now[0]),
    )


async def test_the_limit_holds_across_copies_and_a_refusal_uses_no_quota() -> None:
    now = [1000.0]
    a, b = two_copies(60, now)
    assert [await a.take("alice", "enqueue", 3) for _ in range(2)] == [None, None]
    assert await b.take("alice", "enqueue", 3) is None
    assert await b.take("alice", "enqueue", 3) is not None
    assert await a.take("alice", "enqueue", 3) is not None
    assert await a.take("bob", "enqueue", 3) is None  # per user
    assert await a.take("alice", "ondemand", 3) is None  # per path
    # Refusals were not counted: after the window, exactly 3 fit again.
    now[0] += 60 + 60 / BUCKETS
    assert [await b.take("alice", "enqueue", 3) is None for _ in range(4)] == [1, 1, 1, 0]


async def test_retry_after_is_when_the_oldest_requests_have_left_the_window() -> None:
    now = [6000.0]  # the start of a bucket
    window, _ = two_copies(60, now)
    assert [await window.take("alice", "enqueue", 2) for _ in range(2)] == [None, None]
    now[0] += 10
    wait = await window.take("alice", "enqueue", 2)
    # Exact would be 50 s; the bucketed window may say up to one bucket (6 s) more, never less.
    assert wait is not None
    assert 50 <= wait <= 56
    now[0] += wait
    assert await window.take("alice", "enqueue", 2) is None


async def test_the_oldest_bucket_counts_for_the_part_still_inside_the_window() -> None:
    now = [6000.0]
    window, _ = two_copies(60, now)
    for _ in range(10):
        assert await window.take("alice", "ondemand", 10) is None
    now[0] += 60 + 3  # half of the first bucket has left the window: 5 of its 10 count
    allowed = [await window.take("alice", "ondemand", 10) is None for _ in range(8)]
    assert allowed == [True] * 5 + [False] * 3


async def test_closed_buckets_are_read_once() -> None:
    now = [6002.0]  # past the first second of a bucket, when the one before is settled
    counters = DictCounters()
    window = SharedWindow(counters, 60, clock=lambda: now[0])
    for _ in range(50):
        await window.take("alice", "ondemand", 1000)
        now[0] += 0.01
    assert counters.reads == 1  # one round trip per request in steady state: the $inc


@pytest.mark.parametrize("limit", [1, 5, 50])
async def test_a_steady_sender_gets_the_limit_per_window_within_one_bucket(limit: int) -> None:
    now = [6000.0]
    window, _ = two_copies(60, now)
    accepted: list[float] = []
    for _ in range(3000):  # a request every 0.1 s for 300 s
        if await window.take("alice", "enqueue", limit) is None:
            accepted.append(now[0])
        now[0] += 0.1
    for i, at in enumerate(accepted):  # never more than `limit` in any 60 s
        inside = [t for t in accepted[i:] if t < at + 60]
        assert len(inside) <= limit
    assert len(accepted) >= 5 * limit * (1 - 1 / BUCKETS) - 1  # and not far below it


class CountingCounters(DictCounters):
    def __init__(self) -> None:
        super().__init__()
        self.adds = 0

    async def add(self, key: str, n: int) -> int:
        self.adds += 1
        return await super().add(key, n)


async def test_large_limits_are_leased_in_batches_and_still_hold_across_copies() -> None:
    now = [6000.0]
    shared = CountingCounters()
    a = SharedWindow(shared, 60, clock=lambda: now[0])
    b = SharedWindow(shared, 60, clock=lambda: now[0])
    assert lease_size(400) == 10
    allowed = 0
    for i in range(1000):  # two copies, one user, all within one bucket
        copy = a if i % 2 else b
        if await copy.take("alice", "ondemand", 400) is None:
            allowed += 1
        await asyncio.sleep(0)  # let the background leases run
    # Never more than the quota; less by at most what the other copies hold leased, unused,
    # until the bucket ends (one lease each).
    assert 400 - 2 * 10 <= allowed <= 400
    assert shared.adds < 1000 / 5  # a round trip per batch, not per request
    # A refusal is remembered: a caller over quota costs no round trips.
    before = shared.adds
    for _ in range(100):
        assert await a.take("alice", "ondemand", 400) is not None
    assert shared.adds == before


async def test_what_a_copy_leased_and_did_not_use_is_given_back_when_the_bucket_ends() -> None:
    now = [6000.0]
    shared = CountingCounters()
    a = SharedWindow(shared, 60, clock=lambda: now[0])
    assert await a.take("alice", "ondemand", 4000) is None  # leases 100, uses 1
    await asyncio.sleep(0)
    assert sum(shared.counts.values()) >= 100
    now[0] += 6  # next bucket
    assert await a.take("alice", "ondemand", 4000) is None
    for _ in range(3):
        await asyncio.sleep(0)
    first = next(k for k in shared.counts if "|1000|" in k)
    assert shared.counts[first] == 1  # only the request it let through still counts


async def test_the_limit_holds_across_a_bucket_edge_when_copies_race() -> None:
    """Found by two ingests under one burst: one copy still counting into a bucket while the
    other counted into the next; each saw only its own bucket, and five of four passed."""
    shared = DictCounters()
    late_clock, early_clock = [6005.9], [6006.1]  # either side of the edge at 6006
    late = SharedWindow(shared, 60, clock=lambda: late_clock[0])
    early = SharedWindow(shared, 60, clock=lambda: early_clock[0])
    for _ in range(3):
        assert await late.take("alice", "enqueue", 4) is None
    assert await early.take("alice", "enqueue", 4) is None  # the 4th, in the next bucket
    assert await late.take("alice", "enqueue", 4) is not None  # a 5th, on the late copy


class SlowCounters(DictCounters):
    """Adds that wait for `gate`: a store slower than the requests."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def add(self, key: str, n: int) -> int:
        await self.gate.wait()
        return await super().add(key, n)


async def test_far_below_the_limit_no_request_waits_for_a_slow_store_and_all_are_counted() -> None:
    now = [6000.0]
    shared = SlowCounters()
    a = SharedWindow(shared, 60, clock=lambda: now[0])
    limit = 100_000  # leases of 100
    first = asyncio.create_task(a.take("alice", "ondemand", limit))
    await asyncio.sleep(0)
    shared.gate.set()
    assert await first is None  # the first lease is waited for
    shared.gate.clear()  # from here the store does not answer
    async with asyncio.timeout(5):
        for _ in range(250):  # past the lease: the rest go through while the next is on its way
            assert await a.take("alice", "ondemand", limit) is None
    shared.gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert await a.take("alice", "ondemand", limit) is None
    for _ in range(5):
        await asyncio.sleep(0)
    counted = sum(shared.counts.values())
    assert counted >= 252  # every request let through is counted (plus what is leased)


async def test_near_the_limit_every_request_waits_for_the_exact_count() -> None:
    now = [6000.0]
    shared = SlowCounters()
    shared.gate.set()
    a = SharedWindow(shared, 60, clock=lambda: now[0])
    allowed = 0
    for _ in range(450):
        allowed += await a.take("alice", "ondemand", 400) is None
        await asyncio.sleep(0)
    assert allowed <= 400
