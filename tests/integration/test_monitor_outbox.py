"""A task event is recorded with its change (the request's outbox in enqueue_logs, on the real
FerretDB) and leaves it only once Kafka has it: a monitor killed in between leaves it for the
next owner, who finds it with the requests it loads, ended ones included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.collections import ENQUEUE_LOGS
from schemas.tasks import TaskEvent, TaskEventKind
from services.monitor.lifecycle import Change
from services.monitor.store import TaskLogStore

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _event(kind: TaskEventKind, rid: str = "r1") -> TaskEvent:
    return TaskEvent(kind=kind, request_id=rid, user="alice", task_id="t1", clone_id="c1")


async def test_an_event_recorded_and_not_sent_is_found_by_the_next_owner(mongo_db: Any) -> None:
    logs = mongo_db[ENQUEUE_LOGS]
    await logs.insert_many(
        [
            {"_id": rid, "status": "queued", "clone_id": f"c-{rid}", "user": "alice"}
            for rid in ("r1", "r2", "r3")
        ]
    )
    store = TaskLogStore(mongo_db)
    running, done = _event(TaskEventKind.STARTED), _event(TaskEventKind.COMPLETED)
    assert await store.record("r1", Change("running", None), AT, running)
    assert await store.record("r1", Change("completed", None), AT, done)
    # r2 ended and its event went out: nothing left to do for it.
    r2_done = _event(TaskEventKind.COMPLETED, "r2")
    assert await store.record("r2", Change("completed", None), AT, r2_done)
    await store.sent("r2", r2_done)
    assert (await logs.find_one({"_id": "r2"}))["outbox"] == {}
    # the copy dies here, r1's two events never published
    found = {w.request_id: w for w in await store.active()}
    assert set(found) == {"r1", "r3"}  # r1 ended, but has events to publish; r3 is queued
    assert [e.kind for e in found["r1"].pending] == [TaskEventKind.STARTED, TaskEventKind.COMPLETED]
    assert found["r1"].pending[1] == done
    assert found["r3"].pending == []
    await store.sent("r1", running)
    found = {w.request_id: w for w in await store.active()}
    assert [e.kind for e in found["r1"].pending] == [TaskEventKind.COMPLETED]
    await store.sent("r1", done)
    assert {w.request_id for w in await store.active()} == {"r3"}
    # a change already recorded is not recorded (nor its event put out) again
    assert not await store.record("r1", Change("completed", None), AT, done)
    assert (await logs.find_one({"_id": "r1"}))["outbox"] == {}
