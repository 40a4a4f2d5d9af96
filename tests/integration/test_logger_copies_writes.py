"""Two logger copies folding into the same read-model documents at once, on the real FerretDB:
every count and every index entry lands (FerretDB 1.x can lose one of two concurrent updates
of a document; the logger's writes hold the document's lock there, runtime/doclocks.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from runtime.doclocks import DocLocks
from schemas.collections import DOC_LOCKS, VIEW_HOURLY
from services.logger.fold import Fact, Writes, effects
from services.logger.store import ViewStore
from tests.conftest import Bus

AT = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)
FACTS = 40


async def _fold_from_two_copies(bus: Bus, *, locked: bool) -> int:
    clients: list[AsyncMongoClient[dict[str, Any]]] = [
        AsyncMongoClient(bus.mongo_uri, tz_aware=True) for _ in range(2)
    ]
    try:
        stores = [
            ViewStore(c[bus.mongo_db], 8, DocLocks(c[bus.mongo_db], on=locked)) for c in clients
        ]

        async def fold(store: ViewStore, n: int) -> None:
            writes = Writes()
            fact = Fact("ondemand", f"r{n}", "ok", AT, counted=True, user="alice")
            effects(fact, None, writes)
            await store.apply(writes)

        await asyncio.gather(*(fold(stores[n % 2], n) for n in range(FACTS)))
        docs = await clients[0][bus.mongo_db][VIEW_HOURLY].find({}).to_list(None)
        return sum(int(d.get("count", 0)) for d in docs if str(d["_id"]).startswith("ondemand|"))
    finally:
        for client in clients:
            await client.close()


async def test_two_copies_folding_at_once_lose_no_count(bus: Bus, mongo_db: Any) -> None:
    assert await _fold_from_two_copies(bus, locked=True) == FACTS
    assert await mongo_db[DOC_LOCKS].count_documents({}) == 0
