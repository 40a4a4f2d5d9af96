"""Two logger copies never fold one fact both, on the real FerretDB.

An enqueue's "queued" comes twice, as a RequestLogged on mlbus.logs and as a task event on
mlbus.events.task, and the two topics' partitions are shared among the copies by two groups: two
copies can fold the same fact at the same moment. A claim not yet done was taken over by whoever
asked (meant for a copy that died between claim and done), so both counted the request. Now a
recent claim is held: the second copy waits until the fold is done (then it is a redelivery) or
its claim goes stale."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from runtime.doclocks import DocLocks
from schemas.collections import VIEW_HOURLY
from services.logger.errors import ClaimHeld
from services.logger.fold import Fact
from services.logger.handlers import Folder
from services.logger.store import ViewStore
from tests.conftest import Bus

AT = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)


async def test_a_recent_claim_is_held_a_done_one_is_a_redelivery_a_stale_one_taken_over(
    mongo_db: Any,
) -> None:
    a, b = ViewStore(mongo_db), ViewStore(mongo_db)
    assert await a.claim(["r1/queued"]) == ({"r1/queued"}, set())
    assert await b.claim(["r1/queued"]) == (set(), {"r1/queued"})  # a is folding it
    await a.mark_done(["r1/queued"])
    assert await b.claim(["r1/queued"]) == (set(), set())  # folded: a redelivery
    assert await a.claim(["r2/queued"]) == ({"r2/queued"}, set())  # and a dies before done
    b.claim_stale_s = 0.3
    await asyncio.sleep(0.5)
    c = ViewStore(mongo_db)
    c.claim_stale_s = 0.3
    taken = await asyncio.gather(b.claim(["r2/queued"]), c.claim(["r2/queued"]))
    assert sorted(len(over) for over, _ in taken) == [0, 1]  # one of the two takes it over


async def test_two_copies_folding_the_same_facts_at_once_count_each_once(bus: Bus) -> None:
    clients: list[AsyncMongoClient[dict[str, Any]]] = [
        AsyncMongoClient(bus.mongo_uri, tz_aware=True) for _ in range(2)
    ]
    try:
        dbs = [c[bus.mongo_db] for c in clients]
        folders = [Folder(ViewStore(db, 8, DocLocks(db, on=True))) for db in dbs]
        facts = [
            Fact("enqueue", f"r{n}", "queued", AT, counted=True, user="alice", target="t1")
            for n in range(30)
        ]

        async def fold(folder: Folder, fact: Fact) -> None:
            deadline = time.monotonic() + 60
            while True:  # as the consumer loop does with a ServerAway: wait, then again
                try:
                    await folder.fold(fact)
                    return
                except ClaimHeld:
                    assert time.monotonic() < deadline, f"{fact.key} held for a minute"
                    await asyncio.sleep(0.05)

        # each fact reaches both copies at once (from its two topics)
        await asyncio.gather(*(fold(f, fact) for fact in facts for f in folders))
        docs = await dbs[0][VIEW_HOURLY].find({}).to_list(None)
        counted = sum(int(d.get("count", 0)) for d in docs if str(d["_id"]).startswith("enqueue|"))
        assert counted == len(facts)
    finally:
        for client in clients:
            await client.close()
