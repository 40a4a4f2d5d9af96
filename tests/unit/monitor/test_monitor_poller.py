"""The poller's change detection, idempotency and resilience, against fakes (no network)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from runtime.clearml import ClearMLRejected, ClearMLUnavailable
from schemas.base import Envelope, utcnow
from schemas.status import ENDED
from schemas.tasks import TaskEvent, TaskEventKind
from services.monitor.clearml import CHUNK
from services.monitor.errors import PublishFailed, StoreUnavailable
from services.monitor.handlers import TaskEventHandler
from services.monitor.lifecycle import Change, Watched, WatchSet
from services.monitor.poller import Poller
from tests.support import eventually


class FakeClearML:
    """Statuses by clone id; can be made unavailable; remembers each call's ids."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.outputs: dict[str, Any] = {}
        self.calls: list[list[str]] = []
        self.down = False
        self.log_down = False

    def set(self, clone: str, status: str, message: str = "", reason: str = "") -> None:
        self.tasks[clone] = {
            "id": clone,
            "status": status,
            "status_message": message,
            "status_reason": reason,
        }

    async def statuses(self, task_ids: list[str]) -> list[dict[str, Any]]:
        self.calls.append(task_ids)
        if self.down:
            raise ClearMLUnavailable("tasks.get_all: HTTP 503")
        return [self.tasks[t] for t in task_ids if t in self.tasks]

    async def results(
        self, task_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        return self.outputs.get(task_id, ({}, [], {}))

    async def task_log(self, task_id: str, lines: int) -> list[dict[str, Any]]:
        if self.log_down:
            raise ClearMLUnavailable("events.get_task_log: HTTP 503")
        return self.logs.get(task_id, [])[-lines:]


class FakeStore:
    """enqueue_logs as the real store guards it: no write when the doc shows the status already,
    is settled, or is missing."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.down = False

    def add(self, rid: str, status: str = "queued") -> None:
        self.docs[rid] = {"status": status, "history": [{"status": status}]}

    async def record(
        self, request_id: str, change: Change, at: datetime, event: TaskEvent | None = None
    ) -> bool:
        if self.down:
            raise StoreUnavailable("no primary")
        doc = self.docs.get(request_id)
        if doc is None or doc["status"] == change.status or doc["status"] in ENDED:
            return False
        doc["status"] = change.status
        if event is not None:
            doc.setdefault("outbox", []).append(event)
        if change.message:
            doc["error"] = change.message
        if change.results is not None:
            doc["results"], doc["result_uris"] = change.results, change.uris
        doc["history"].append({"status": change.status, "at": at, "message": change.message})
        return True

    async def sent(self, request_id: str, event: TaskEvent) -> None:
        if self.down:
            raise StoreUnavailable("no primary")
        outbox = self.docs[request_id].get("outbox", [])
        self.docs[request_id]["outbox"] = [e for e in outbox if e.kind != event.kind]

    def timeline(self, rid: str) -> list[str]:
        return [h["status"] for h in self.docs[rid]["history"]]


class FakeBus:
    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self.down = False

    async def __call__(self, event: TaskEvent) -> None:
        if self.down:
            raise PublishFailed("broker away")
        self.events.append(event)

    def kinds(self, rid: str = "r1") -> list[TaskEventKind]:
        return [e.kind for e in self.events if e.request_id == rid]


class Rig:
    def __init__(self) -> None:
        self.clearml, self.store, self.bus, self.watch = (
            FakeClearML(),
            FakeStore(),
            FakeBus(),
            WatchSet(),
        )
        self.poller = Poller(self.clearml, self.store, self.bus, self.watch, poll_s=0.01)

    def follow(self, rid: str = "r1", clone: str = "c1", status: str = "queued") -> None:
        self.store.add(rid, status)
        self.watch.add(Watched(rid, clone, status, "alice", "t1", "gpu-a100"))


@pytest.fixture
def rig() -> Rig:
    return Rig()


async def test_running_then_completed_is_recorded_and_published_once(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "in_progress")
    await rig.poller.tick()
    await rig.poller.tick()  # nothing new: no second entry, no second event
    rig.clearml.set("c1", "completed")
    await rig.poller.tick()
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "running", "completed"]
    assert rig.bus.kinds() == [TaskEventKind.STARTED, TaskEventKind.COMPLETED]
    assert len(rig.watch) == 0
    assert rig.clearml.calls == [["c1"], ["c1"], ["c1"]]  # not polled once it ended


async def test_a_fast_task_skips_running(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "published")
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "completed"]
    assert rig.bus.kinds() == [TaskEventKind.COMPLETED]


async def test_failure_records_the_human_message(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "failed", "CUDA out of memory", "worker execution exit code 1")
    await rig.poller.tick()
    doc = rig.store.docs["r1"]
    assert doc["status"] == "failed"
    assert "CUDA out of memory" in doc["error"]
    (event,) = rig.bus.events
    assert event.kind is TaskEventKind.FAILED
    assert event.message == doc["error"]


async def test_a_restarted_monitor_does_not_record_a_change_twice(rig: Rig) -> None:
    # The document already says 'running' (written before a restart); memory says 'queued'.
    rig.follow(status="running")
    rig.watch.items["r1"].status = "queued"
    rig.clearml.set("c1", "in_progress")
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["running"]
    assert rig.bus.events == []


async def test_a_redelivered_enqueued_event_for_an_ended_request_changes_nothing(rig: Rig) -> None:
    rig.store.add("r1", "completed")
    rig.watch.add(Watched("r1", "c1", "queued", "alice", "t1", "gpu-a100"))
    rig.clearml.set("c1", "completed")
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["completed"]
    assert rig.bus.events == []
    assert len(rig.watch) == 0


async def test_clearml_outage_costs_a_tick_not_the_change(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "completed")
    rig.clearml.down = True
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued"]
    rig.clearml.down = False
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "completed"]


async def test_store_outage_retries_the_change_next_tick(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "in_progress")
    rig.store.down = True
    await rig.poller.tick()
    assert rig.watch.items["r1"].status == "queued"
    assert rig.bus.events == []
    rig.store.down = False
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "running"]
    assert rig.bus.kinds() == [TaskEventKind.STARTED]


async def test_events_kafka_did_not_take_are_sent_later_in_order(rig: Rig) -> None:
    rig.follow()
    rig.bus.down = True
    rig.clearml.set("c1", "in_progress")
    await rig.poller.tick()
    rig.clearml.set("c1", "failed", "boom")
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "running", "failed"]
    assert "r1" in rig.watch.items  # ended, but its events are not out yet
    rig.bus.down = False
    await rig.poller.tick()
    assert rig.bus.kinds() == [TaskEventKind.STARTED, TaskEventKind.FAILED]
    assert len(rig.watch) == 0


async def test_a_copy_killed_before_publishing_leaves_its_events_to_the_next(rig: Rig) -> None:
    rig.follow()
    rig.bus.down = True  # the broker never takes them: the copy is then killed
    rig.clearml.set("c1", "in_progress")
    await rig.poller.tick()
    rig.clearml.set("c1", "completed")
    await rig.poller.tick()
    outbox = rig.store.docs["r1"]["outbox"]
    assert [e.kind for e in outbox] == [TaskEventKind.STARTED, TaskEventKind.COMPLETED]
    # the next owner loads the request with its outbox (TaskLogStore.active) and publishes it
    bus, watch = FakeBus(), WatchSet()
    watch.add(Watched("r1", "c1", "completed", "alice", "t1", "gpu-a100", pending=list(outbox)))
    await Poller(rig.clearml, rig.store, bus, watch, poll_s=0.01).tick()
    assert bus.kinds() == [TaskEventKind.STARTED, TaskEventKind.COMPLETED]
    assert rig.store.docs["r1"]["outbox"] == []
    assert len(watch) == 0


async def test_clone_ids_are_polled_in_chunks(rig: Rig) -> None:
    for n in range(CHUNK + 3):
        rig.follow(f"r{n}", f"c{n}")
    rig.clearml.calls.clear()
    rig.clearml.set("c7", "completed")
    await rig.poller.tick()
    assert [len(c) for c in rig.clearml.calls] == [CHUNK, 3]
    assert rig.bus.kinds("r7") == [TaskEventKind.COMPLETED]


async def test_a_refused_chunk_does_not_block_the_others(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "completed")
    calls = 0
    real = rig.clearml.statuses

    async def refuse_once(ids: list[str]) -> list[dict[str, Any]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ClearMLRejected(400, 0, "bad", "bad")
        return await real(ids)

    methods = {"statuses": staticmethod(refuse_once), "results": staticmethod(rig.clearml.results)}
    rig.poller._clearml = type("C", (), methods)()
    await rig.poller.tick()
    assert rig.bus.events == []
    await rig.poller.tick()
    assert rig.bus.kinds() == [TaskEventKind.COMPLETED]


async def test_run_survives_a_bug_and_stops_on_request(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "completed")
    ticks = 0
    real_tick = rig.poller.tick

    async def flaky_tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            raise RuntimeError("bug")
        await real_tick()

    rig.poller.tick = flaky_tick
    stop = asyncio.Event()
    task = asyncio.create_task(rig.poller.run(stop))
    await eventually(lambda: _published(rig), timeout_s=20, what="the completion event")
    stop.set()
    await asyncio.wait_for(task, 20)
    assert rig.bus.kinds() == [TaskEventKind.COMPLETED]


async def _published(rig: Rig) -> bool:
    return bool(rig.bus.events)


def _enqueued(
    rid: str, clone: str | None, created_at: datetime | None = None
) -> Envelope[TaskEvent]:
    event = TaskEvent(
        kind=TaskEventKind.ENQUEUED,
        request_id=rid,
        user="bob",
        task_id="t9",
        clone_id=clone,
        queue_name="cpu",
    )
    return Envelope[TaskEvent](
        id=rid + "0000000",
        type="TaskEvent",
        schema_version=1,
        created_at=created_at or utcnow(),
        payload=event,
    )


async def test_task_enqueued_events_feed_the_watch_set() -> None:
    watch = WatchSet()
    handler = TaskEventHandler(watch, utcnow())
    await handler(_enqueued("r1", "c1"))
    await handler(_enqueued("r2", None))  # nothing to follow
    await handler(_enqueued("r3", "c3", utcnow() - timedelta(hours=1)))  # history before the scan
    started = _enqueued("r4", "c4").model_copy(
        update={"payload": TaskEvent(kind=TaskEventKind.STARTED, request_id="r4", task_id="t9")}
    )
    await handler(started)
    assert list(watch.items) == ["r1"]
    w = watch.items["r1"]
    assert (w.clone_id, w.status, w.user, w.task_id, w.queue) == (
        "c1",
        "queued",
        "bob",
        "t9",
        "cpu",
    )
    watch.items["r1"].status = "running"
    await handler(_enqueued("r1", "c1"))  # a redelivery keeps what the poller learned
    assert watch.items["r1"].status == "running"
