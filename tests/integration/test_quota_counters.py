"""The rate counters on the real FerretDB: adds from two copies at once all count (FerretDB 1.x
applies an update outside a transaction on SQLite, so two `$inc` at once can lose one; the
counters take a lock document across copies there, runtime/doclocks.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient

from runtime.doclocks import DocLocks
from runtime.mongo import is_ferretdb
from schemas.collections import DOC_LOCKS
from services.ingest.shared_quotas import MongoCounters
from tests.conftest import Bus

ADDS = 60


async def _count_from_two_copies(bus: Bus, *, serialize: bool) -> int:
    clients: list[AsyncMongoClient[dict[str, Any]]] = [
        AsyncMongoClient(bus.mongo_uri, tz_aware=True) for _ in range(2)
    ]
    try:
        copies = [
            MongoCounters(c[bus.mongo_db], 30.0, DocLocks(c[bus.mongo_db], on=serialize))
            for c in clients
        ]
        key = f"enqueue|60|1|alice-{serialize}"
        await asyncio.gather(*(copy.add(key, 1) for copy in copies for _ in range(ADDS)))
        return (await copies[0].get_many([key]))[key]
    finally:
        for client in clients:
            await client.close()


async def test_adds_from_two_copies_at_once_all_count(bus: Bus, mongo_db: Any) -> None:
    assert await is_ferretdb(mongo_db)
    assert await _count_from_two_copies(bus, serialize=True) == 2 * ADDS
    assert await mongo_db[DOC_LOCKS].count_documents({}) == 0  # every lock let go
