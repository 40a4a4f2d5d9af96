"""The monitor follows what the enqueuer enqueued: HTTP → Kafka → enqueuer → ClearML (simulator)
→ monitor → MongoDB (the request's timeline) and the task-events topic."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from clearml_sim.demo import DEMO_TEMPLATE_IDS
from clearml_sim.testing import SimServer
from schemas.codec import decode
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import TASK_EVENTS
from services.monitor.app import run as run_monitor
from services.monitor.settings import MonitorSettings
from tests.conftest import Bus
from tests.fixtures import Worker, monitor_settings, running_worker
from tests.support import Issuer, eventually, queues_seen

ALWAYS_FAILS = DEMO_TEMPLATE_IDS["always-fails-demo"]
SIM_FAILURE = "CUDA out of memory. Tried to allocate 2.50 GiB (simulated failure)"


def running_monitor(settings: MonitorSettings) -> contextlib.AbstractAsyncContextManager[Worker]:
    """The monitor as a task of the test's event loop."""
    return running_worker(run_monitor, settings)


@pytest.fixture
async def monitor(bus: Bus, sim: SimServer, mongo_db: Any) -> AsyncIterator[Worker]:
    async with running_monitor(monitor_settings(bus, sim)) as worker:
        await queues_seen(mongo_db, "gpu-a100")
        yield worker


def auth(issuer: Issuer, user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user)}"}


async def settled(ingest: httpx.AsyncClient, issuer: Issuer, rid: str) -> dict[str, Any]:
    """The request's status once it has ended (completed, failed or stopped)."""

    async def probe() -> dict[str, Any] | None:
        response = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["status"] in ("completed", "failed", "stopped") else None

    return await eventually(probe, timeout_s=30, what=f"request {rid} to end")


def timeline(status: dict[str, Any]) -> list[str]:
    return [e["status"] for e in status["timeline"]]


def without_running(steps: list[str]) -> list[str]:
    """A fast task may end between two polls: 'running' is shown only when it was seen."""
    return [s for s in steps if s != "running"]


async def task_events(bus: Bus, rid: str, kind: TaskEventKind) -> list[TaskEvent]:
    """The request's task events, read from the start of the topic until one of `kind` is there."""
    consumer = AIOKafkaConsumer(
        TASK_EVENTS.named(bus.topic_prefix),
        bootstrap_servers=bus.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[TaskEvent] = []
    try:

        async def probe() -> list[TaskEvent] | None:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    event = decode(TASK_EVENTS, record.value).payload
                    if event.request_id == rid:
                        seen.append(event)
            return seen if any(e.kind is kind for e in seen) else None

        return await eventually(probe, timeout_s=20, what=f"{kind} for {rid}")
    finally:
        await consumer.stop()


@pytest.mark.usefixtures("enqueuer", "monitor")
async def test_an_enqueued_task_is_followed_until_it_completes(
    bus: Bus,
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    parking_task_id: str,
) -> None:
    response = await ingest.post(
        "/v1/enqueue",
        json={"task_id": parking_task_id, "input": {"lr": 0.05}},
        headers=auth(issuer),
    )
    assert response.status_code == 202, response.text
    rid = response.json()["request_id"]

    status = await settled(ingest, issuer, rid)
    assert status["status"] == "completed"
    assert status["error"] is None
    steps = timeline(status)
    assert without_running(steps) == ["accepted", "cloned", "queued", "completed"]
    assert steps.count("running") <= 1
    times = [e["at"] for e in status["timeline"]]
    assert times == sorted(times)

    events = await task_events(bus, rid, TaskEventKind.COMPLETED)
    kinds = [e.kind for e in events]
    assert kinds.count(TaskEventKind.COMPLETED) == 1
    assert kinds[0] is TaskEventKind.ENQUEUED
    completed = next(e for e in events if e.kind is TaskEventKind.COMPLETED)
    assert completed.user == "alice"
    assert completed.task_id == parking_task_id
    assert completed.queue_name == "gpu-a100"
    assert completed.clone_id == events[0].clone_id


@pytest.mark.usefixtures("enqueuer", "monitor")
async def test_a_failed_run_shows_the_clusters_reason(
    bus: Bus,
    ingest: httpx.AsyncClient,
    issuer: Issuer,
) -> None:
    mapped = await ingest.post(
        "/v1/admin/task-mappings",
        json={
            "clearml_task_id": ALWAYS_FAILS,
            "default_queue": "gpu-a100",
            "description": "always fails",
        },
        headers={"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"},
    )
    assert mapped.status_code == 201, mapped.text
    response = await ingest.post(
        "/v1/enqueue",
        json={"task_id": mapped.json()["task_id"], "input": {}},
        headers=auth(issuer),
    )
    assert response.status_code == 202, response.text
    rid = response.json()["request_id"]

    status = await settled(ingest, issuer, rid)
    assert status["status"] == "failed"
    assert SIM_FAILURE in status["error"]  # the script's own error, from its console log
    assert "clearml-agent" not in status["error"]  # not the agent's words, nor its machine
    assert without_running(timeline(status)) == ["accepted", "cloned", "queued", "failed"]
    assert SIM_FAILURE in status["timeline"][-1]["message"]

    events = await task_events(bus, rid, TaskEventKind.FAILED)
    failed = next(e for e in events if e.kind is TaskEventKind.FAILED)
    assert failed.message == status["error"]


@pytest.mark.usefixtures("enqueuer", "monitor")
async def test_the_compatibility_route_is_followed_too(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    parking_task_id: str,
) -> None:
    response = await ingest.post(
        "/clearml/serve/enqueue_task",
        json={
            "access_token": issuer.token(),
            "task_id": parking_task_id,
            "queue": None,
            "params": {"lr": 0.1},
        },
    )
    assert 200 <= response.status_code < 300, response.text
    body = response.json()
    assert body["status"] == "queued"

    status = await settled(ingest, issuer, body["request_id"])
    assert status["status"] == "completed"
    assert without_running(timeline(status)) == ["accepted", "cloned", "queued", "completed"]


async def skip_past_existing_events(bus: Bus, group: str) -> None:
    """Commit `group` at the end of the task-events topic, as a monitor that ran before would
    have: what is already there is never read again by that group."""
    topic = TASK_EVENTS.named(bus.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bus.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(TASK_EVENTS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


@pytest.mark.usefixtures("enqueuer")
async def test_a_monitor_started_later_follows_requests_already_queued(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, sim: SimServer, parking_task_id: str
) -> None:
    # 'cpu' has no agent yet: the task waits in its queue while no monitor runs.
    response = await ingest.post(
        "/v1/enqueue",
        json={"task_id": parking_task_id, "queue_name": "cpu", "input": {}},
        headers=auth(issuer),
    )
    assert response.status_code == 202, response.text
    rid = response.json()["request_id"]

    async def queued() -> bool:
        status = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer))
        return bool(status.json()["status"] == "queued")

    await eventually(queued, what="request queued")
    settings = monitor_settings(bus, sim)
    await skip_past_existing_events(bus, settings.group)  # only MongoDB can tell it now

    async with running_monitor(settings):
        sim.sim.agents.add("cpu-box-01", ["cpu"], gpus=0)
        status = await settled(ingest, issuer, rid)
    assert status["status"] == "completed"
    assert without_running(timeline(status)) == ["accepted", "cloned", "queued", "completed"]
