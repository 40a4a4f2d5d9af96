"""Task seats on the real FerretDB (SQLite): what the seat logic rests on, and the logic itself
with two reservers (as two copies) on one database."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from schemas.collections import TASK_SLOTS
from services.ingest.shared_quotas import MongoSlots, SharedTasks, marker_id

TIMEOUT_S = 10.0  # a loaded machine must not make the store look down here


async def no_status(request_id: str) -> str | None:
    return None


async def test_an_ordered_insert_stops_at_the_first_taken_id(mongo_db: Any) -> None:
    slots = MongoSlots(mongo_db, TIMEOUT_S)
    assert await slots.insert([{"_id": "a", "user": "u"}, {"_id": "b", "user": "u"}]) == 2
    assert await slots.insert([{"_id": "c", "user": "u"}, {"_id": "b", "user": "u"}]) == 1
    assert await slots.insert([{"_id": "a", "user": "u"}, {"_id": "d", "user": "u"}]) == 0
    assert await slots.insert([{"_id": "a", "user": "u"}]) == 0
    ids = sorted([d["_id"] async for d in mongo_db[TASK_SLOTS].find({})])
    assert ids == ["a", "b", "c"]
    assert not await slots.delete("b", "someone")  # held by no request of that name: kept
    assert await slots.delete("b")
    assert not await slots.delete("b")  # a second delete of one _id is told it did nothing


async def test_racing_reservers_on_ferretdb_seat_exactly_the_limit(mongo_db: Any) -> None:
    copies = [
        SharedTasks(MongoSlots(mongo_db, TIMEOUT_S), no_status, 3600, rng=random.Random(i))
        for i in range(2)
    ]
    passed = await asyncio.gather(*(copies[i % 2].reserve("a|lice", f"r{i}", 5) for i in range(16)))
    assert sum(passed) == 5
    seats = [d async for d in mongo_db[TASK_SLOTS].find({"user": "a|lice"})]
    held = sorted(str(d["request"]) for d in seats if str(d["_id"]).startswith("s|"))
    assert held == sorted(f"r{i}" for i, ok in enumerate(passed) if ok)
    # The same request again holds its seat; a release frees it for another.
    first = held[0]
    assert await copies[1].reserve("a|lice", first, 5)
    assert not await copies[1].reserve("a|lice", "late", 5)
    await copies[0].release(first)
    assert await mongo_db[TASK_SLOTS].find_one({"_id": marker_id(first)}) is None
    assert await copies[1].reserve("a|lice", "late", 5)
    assert not await copies[0].reserve("a|lice", "later", 5)


async def test_concurrent_seats_share_round_trips(mongo_db: Any) -> None:
    """What one copy carries: requests that arrive while an insert is in flight go together."""
    trips: list[int] = []

    class Counted(MongoSlots):
        async def _insert_many(self, docs: list[dict[str, object]]) -> set[int]:
            trips.append(len(docs))
            return await super()._insert_many(docs)

    tasks = SharedTasks(Counted(mongo_db, TIMEOUT_S), no_status, 3600)
    passed = await asyncio.gather(*(tasks.reserve("bob", f"r{i}", 10**9) for i in range(300)))
    assert all(passed)
    assert sum(trips) == 600  # a marker and a seat each, nothing refused
    assert len(trips) < 300 / 4, trips
    seats = await mongo_db[TASK_SLOTS].count_documents({"_id": {"$regex": "^s\\|"}})
    assert seats == 300
