"""The call logs' spool: `record` never waits for the store; what the store could not take is
kept in order and written once it is back; a full spool drops and counts. The collection is a
double here (the real FerretDB case is tests/faults/test_ferretdb_stopped.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from pymongo.errors import ServerSelectionTimeoutError

from schemas.base import Envelope, utcnow
from schemas.inference import InferenceReplied, InferenceRequested
from services.inference_router.outcomes import Outcome
from services.inference_router.store import OnDemandLogStore
from tests.support import eventually


class FakeLogs:
    """`insert_many` that fails while `away` is set (after a pause, as a selection timeout)."""

    def __init__(self) -> None:
        self.away = asyncio.Event()
        self.written: list[str] = []
        self.tries = 0

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool) -> None:
        self.tries += 1
        if self.away.is_set():
            await asyncio.sleep(0.05)
            raise ServerSelectionTimeoutError("no server")
        self.written.extend(str(d["_id"]) for d in docs)

    async def find_one(self, *_: Any) -> dict[str, Any] | None:
        raise AssertionError("the store is not asked while the writer finds it away")


class FakeDb:
    def __init__(self) -> None:
        self.logs = FakeLogs()

    def __getitem__(self, name: str) -> FakeLogs:
        return self.logs


def call() -> tuple[Envelope[InferenceRequested], Outcome]:
    payload = InferenceRequested(
        machine_id="m1",
        endpoint="parking",
        input={},
        reply_to="t.replies",
        deadline=utcnow() + timedelta(seconds=5),
    )
    env = Envelope[InferenceRequested](
        type="InferenceRequested", schema_version=1, payload=payload, user="alice"
    )
    return env, Outcome(InferenceReplied(ok=True, http_status=200), "ok", utcnow())


def spool(db: FakeDb, **kw: Any) -> OnDemandLogStore:
    return OnDemandLogStore(cast(Any, db), retry_cap_s=0.1, **kw)


async def until(check: Callable[[], bool], what: str) -> None:
    async def probe() -> bool:
        return check()

    await eventually(probe, timeout_s=5.0, what=what)


async def timed(op: Awaitable[None]) -> float:
    began = asyncio.get_running_loop().time()
    await op
    return asyncio.get_running_loop().time() - began


async def test_while_the_store_is_away_record_returns_at_once_and_logs_follow_in_order() -> None:
    db = FakeDb()
    logs = spool(db)
    db.logs.away.set()
    ids = []
    for _ in range(20):
        env, outcome = call()
        ids.append(env.id)
        assert await timed(logs.record(env, outcome)) < 0.02
    await until(lambda: db.logs.tries >= 3 and logs.away, "three failed tries")
    assert db.logs.written == []
    assert logs.spooled == 20
    assert await logs.answered("anything") is False  # not asked: the store is away
    db.logs.away.clear()
    await until(lambda: logs.spooled == 0, "the spool emptied")
    assert db.logs.written == ids
    assert not logs.away
    await logs.close(1.0)


async def test_a_full_spool_drops_the_newest_and_counts_them() -> None:
    db = FakeDb()
    logs = spool(db, capacity=5)
    db.logs.away.set()
    for _ in range(8):
        await logs.record(*call())
    assert (logs.spooled, logs.dropped) == (5, 3)
    await logs.close(0.2)  # the store still away: bounded, the rest is reported lost
    assert db.logs.written == []
