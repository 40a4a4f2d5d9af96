"""Task seats shared by ingest copies (seats in a dict here; FerretDB in integration)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from runtime.mongo import Doc
from services.ingest.shared_quotas import MongoSlots, SharedTasks, StoreDown, marker_id, seat_id


class DictSlots:
    """Seats as MongoDB keeps them: a unique `_id`. Every call yields first, so concurrent
    reservers interleave between any two calls, as two copies do; `calls` counts round trips."""

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.calls: Counter[str] = Counter()

    async def insert(self, docs: Sequence[Doc]) -> int:
        await self._turn("insert")
        for n, doc in enumerate(docs):
            if str(doc["_id"]) in self.docs:
                return n
            self.docs[str(doc["_id"])] = dict(doc)
        return len(docs)

    async def of_user(self, user: str | None) -> list[Doc]:
        await self._turn("of_user")
        return [dict(d) for d in self.docs.values() if user is None or d["user"] == user]

    async def get(self, _id: str) -> Doc | None:
        await self._turn("get")
        return self.docs.get(_id)

    async def delete(self, _id: str, request: str | None = None) -> bool:
        await self._turn("delete")
        doc = self.docs.get(_id)
        if doc is None or (request is not None and doc["request"] != request):
            return False
        del self.docs[_id]
        return True

    async def set_seat(self, marker: str, seat: str) -> None:
        await self._turn("set_seat")
        if marker in self.docs:
            self.docs[marker]["seat"] = seat

    async def _turn(self, call: str) -> None:
        self.calls[call] += 1
        for _ in range(random.randint(0, 2)):
            await asyncio.sleep(0)

    def seats(self, user: str) -> dict[str, str]:
        """Seat id -> request, for `user`."""
        return {
            k: str(d["request"])
            for k, d in self.docs.items()
            if k.startswith("s|") and d["user"] == user
        }


class Statuses:
    """The enqueue logs' statuses, as ingest's lookup reads them."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.asked = 0

    async def __call__(self, request_id: str) -> str | None:
        self.asked += 1
        return self.status.get(request_id)


def copies(
    n: int, slots: DictSlots, statuses: Statuses, *, seed: int = 0, max_age_s: float = 3600
) -> list[SharedTasks]:
    """`n` ingest copies sharing one store, each with its own random draws."""
    return [
        SharedTasks(slots, statuses, max_age_s, rng=random.Random(seed * 100 + i)) for i in range(n)
    ]


async def test_at_most_the_limit_pass_and_then_exactly_the_limit() -> None:
    slots, statuses = DictSlots(), Statuses()
    (tasks,) = copies(1, slots, statuses)
    passed = [await tasks.reserve("alice", f"r{i}", 5) for i in range(8)]
    assert passed == [True] * 5 + [False] * 3
    assert len(slots.seats("alice")) == 5
    # A refusal leaves nothing behind: no seat, no marker.
    assert all(marker_id(f"r{i}") not in slots.docs for i in range(5, 8))
    assert await tasks.reserve("bob", "b0", 5)  # per user


async def test_two_reservers_racing_for_the_last_seat_never_both_pass() -> None:
    for seed in range(200):
        random.seed(seed)
        slots, statuses = DictSlots(), Statuses()
        one, two = copies(2, slots, statuses, seed=seed)
        for i in range(3):  # three of four seats taken
            assert await one.reserve("alice", f"held{i}", 4)
        passed = await asyncio.gather(one.reserve("alice", "a", 4), two.reserve("alice", "b", 4))
        assert sorted(passed) == [False, True], seed
        assert len(slots.seats("alice")) == 4


async def test_many_racing_copies_seat_exactly_the_limit() -> None:
    """Seats are never given back on a refusal: a request refused saw every seat taken, so a
    burst fills the limit exactly (no two refusing while a seat is free), across copies."""
    for seed in range(50):
        random.seed(seed)
        slots, statuses = DictSlots(), Statuses()
        many = copies(4, slots, statuses, seed=seed)
        passed = await asyncio.gather(
            *(many[i % 4].reserve("alice", f"r{i}", 7) for i in range(30))
        )
        assert sum(passed) == 7, seed
        seats = slots.seats("alice")
        assert len(seats) == 7
        assert sorted(seats.values()) == sorted(f"r{i}" for i, ok in enumerate(passed) if ok)


async def test_the_same_request_id_twice_holds_one_seat() -> None:
    slots, statuses = DictSlots(), Statuses()
    one, two = copies(2, slots, statuses)
    assert await one.reserve("alice", "same", 2)
    assert await two.reserve("alice", "same", 2)  # an Idempotency-Key replay, on another copy
    assert list(slots.seats("alice").values()) == ["same"]
    assert await one.reserve("alice", "other", 2)
    assert not await two.reserve("alice", "third", 2)


async def test_a_generous_limit_costs_one_insert() -> None:
    slots, statuses = DictSlots(), Statuses()
    (tasks,) = copies(1, slots, statuses)
    for i in range(200):
        assert await tasks.reserve("alice", f"r{i}", 10**9)
    # One ordered insert (marker and seat) per request; nothing read, nothing counted.
    assert slots.calls == Counter(insert=200)
    assert statuses.asked == 0


async def test_the_cost_does_not_grow_with_the_seats_held() -> None:
    slots, statuses = DictSlots(), Statuses()
    (tasks,) = copies(1, slots, statuses)
    for i in range(1000):
        assert await tasks.reserve(f"user{i % 10}", f"r{i}", 1000)
    slots.calls.clear()
    assert await tasks.reserve("user0", "late", 1000)  # 100 of user0's 1,000 seats held
    assert slots.calls["of_user"] == 0
    assert slots.calls["insert"] <= 3


async def test_seats_of_ended_requests_are_freed_at_the_limit() -> None:
    slots, statuses = DictSlots(), Statuses()
    (tasks,) = copies(1, slots, statuses)
    for i in range(3):
        assert await tasks.reserve("alice", f"r{i}", 3)
    assert not await tasks.reserve("alice", "r3", 3)
    statuses.status["r1"] = "failed"
    assert await tasks.reserve("alice", "r4", 3)
    assert sorted(slots.seats("alice").values()) == ["r0", "r2", "r4"]
    assert marker_id("r1") not in slots.docs  # its marker went with its seat
    assert not await tasks.reserve("alice", "r5", 3)


async def test_the_periodic_sweep_frees_ended_requests_of_users_below_their_limit() -> None:
    slots, statuses = DictSlots(), Statuses()
    (tasks,) = copies(1, slots, statuses)
    for user in ("alice", "bob"):
        for i in range(3):
            assert await tasks.reserve(user, f"{user}{i}", 10**9)  # never near the limit
    statuses.status |= {"alice0": "completed", "bob1": "failed", "bob2": "stopped"}
    await tasks.sweep()
    assert sorted(slots.seats("alice").values()) == ["alice1", "alice2"]
    assert sorted(slots.seats("bob").values()) == ["bob0"]
    assert len(slots.docs) == 2 * 3  # a seat and a marker for each request still running


async def test_seats_older_than_the_max_age_are_freed() -> None:
    slots, statuses = DictSlots(), Statuses()
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    tasks = SharedTasks(slots, statuses, 60, clock=lambda: now[0], rng=random.Random(1))
    assert await tasks.reserve("alice", "old", 1)
    now[0] += timedelta(seconds=30)
    assert not await tasks.reserve("alice", "new", 1)
    now[0] += timedelta(seconds=31)
    assert await tasks.reserve("alice", "new", 1)
    assert list(slots.seats("alice").values()) == ["new"]


async def test_two_sweeps_at_once_free_a_seat_once() -> None:
    """Two copies free the same ended request's seat at the same time while a third request
    takes it: the seat taken again is never deleted by the second sweep."""
    for seed in range(100):
        random.seed(seed)
        slots, statuses = DictSlots(), Statuses()
        one, two = copies(2, slots, statuses, seed=seed)
        assert await one.reserve("alice", "done", 2)
        assert await one.reserve("alice", "running", 2)
        statuses.status["done"] = "completed"
        passed = await asyncio.gather(
            *(t.reserve("alice", f"n{i}", 2) for i, t in enumerate((one, two, one)))
        )
        assert sum(passed) == 1, seed
        seats = slots.seats("alice")
        assert sorted(seats.values()) == sorted(
            ["running", *(f"n{i}" for i, ok in enumerate(passed) if ok)]
        )


async def test_release_frees_the_seat_by_id() -> None:
    slots, statuses = DictSlots(), Statuses()
    (tasks,) = copies(1, slots, statuses)
    for i in range(4):  # some seats taken after their first draw collided
        assert await tasks.reserve("alice", f"r{i}", 4)
    slots.calls.clear()
    await tasks.release("r2")
    assert sorted(slots.seats("alice").values()) == ["r0", "r1", "r3"]
    assert marker_id("r2") not in slots.docs
    assert slots.calls["of_user"] == 0
    await tasks.release("r2")  # again, or never seated: nothing happens
    await tasks.release("unknown")
    assert len(slots.seats("alice")) == 3
    assert await tasks.reserve("alice", "r4", 4)


def test_keys_stay_unambiguous_whatever_the_user_name() -> None:
    assert seat_id("a|1", 2) != seat_id("a", 12)
    assert seat_id("a|1", 2) == "s|2|a|1"
    assert marker_id("s|1|a") != seat_id("a", 1)


class StuckSlots:
    """A collection whose inserts never answer (a paused FerretDB)."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.in_flight = asyncio.Event()

    def __getitem__(self, name: str) -> StuckSlots:
        return self

    async def insert_many(self, docs: list[Doc], ordered: bool) -> None:
        self.sent.append([str(d["_id"]) for d in docs])
        self.in_flight.set()
        await asyncio.Event().wait()


async def test_a_seat_waiting_behind_a_stuck_insert_waits_no_longer_than_the_timeout() -> None:
    """Grouped inserts: one that arrives while another is in flight waits for it, and then for
    its own; the store's timeout bounds both together, so the caller falls back in time."""
    store = StuckSlots()
    slots = MongoSlots(store, 1.0)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    first = asyncio.create_task(slots.insert([{"_id": "a", "request": "a"}]))
    await asyncio.wait_for(store.in_flight.wait(), 5)  # the first insert is in flight
    started = loop.time()
    with pytest.raises(StoreDown):
        await slots.insert([{"_id": "b", "request": "b"}])
    assert loop.time() - started < 1.4  # not 1.0 for the first plus 1.0 for its own
    with pytest.raises(StoreDown):
        await first
