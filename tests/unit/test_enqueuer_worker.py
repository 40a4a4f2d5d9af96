"""The whole enqueuer worker (services/enqueuer/app.py's `worker`: its subscription, handler,
failure hook and publishers) run on the in-memory broker, against the ClearML simulator served
on 127.0.0.1, with enqueue_logs as a double: what a request turns into on the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from clearml_sim.demo import DEMO_TEMPLATE_IDS
from clearml_sim.testing import SimServer
from runtime.clearml import ClearMLClient
from runtime.membroker import MemBroker
from schemas.enqueue import EnqueueTask
from schemas.tasks import TaskEventKind
from schemas.topics import ENQUEUE_REQUESTS, LOGS, TASK_EVENTS
from services.enqueuer.app import worker
from services.enqueuer.clearml import ClearML
from services.enqueuer.handlers import REQUEST_TAG
from services.enqueuer.settings import EnqueuerSettings
from tests.unit.test_enqueuer_real_cluster import Store  # enqueue_logs as the handler sees it

PARKING = DEMO_TEMPLATE_IDS["parking-occupancy-train"]
RID = "5f0c8a9e2b7d4c1f9a3e6b8d0c2f4a61"


@pytest.fixture
async def clearml() -> AsyncIterator[tuple[SimServer, ClearML]]:
    async with SimServer() as served, aiohttp.ClientSession() as http:
        client = ClearMLClient(http, served.url, served.access_key, served.secret_key)
        yield served, ClearML(client)


def settings() -> EnqueuerSettings:
    return EnqueuerSettings(topic_prefix="", metrics_port=0, retry_attempts=2, retry_cap_s=0.01)


def task(template: str = PARKING) -> EnqueueTask:
    return EnqueueTask(task_id="ab" * 16, template_task_id=template, queue_name="gpu-a100")


async def test_a_request_delivered_twice_is_cloned_once_and_announced_on_the_bus(
    clearml: tuple[SimServer, ClearML],
) -> None:
    served, client = clearml
    store, broker = Store(), MemBroker()
    async with broker.running(worker(settings(), client, store)):  # type: ignore[arg-type]
        for _ in range(2):  # the second is a redelivery: same request id
            await broker.publish(ENQUEUE_REQUESTS, task(), id=RID, user="alice")
        await broker.settled(timeout_s=20)
    assert store.docs[RID]["status"] == "queued"
    assert len(served.state.tag_index[REQUEST_TAG + RID]) == 1
    events = broker.records(TASK_EVENTS)
    assert {r.key for r in events} == {RID.encode()}  # keyed by request id (the topic's key_of)
    kinds = [e.payload.kind for e in broker.sent(TASK_EVENTS)]
    assert kinds == [TaskEventKind.ENQUEUED, TaskEventKind.ENQUEUED]  # told again: harmless
    [logged] = broker.sent(LOGS)  # the redelivery found it queued: no second log
    assert (logged.payload.request_id, logged.payload.status) == (RID, "queued")
    assert broker.dead_letters() == []


async def test_a_request_that_fails_is_failed_where_its_author_looks_then_dead_lettered(
    clearml: tuple[SimServer, ClearML],
) -> None:
    _, client = clearml
    store, broker = Store(), MemBroker()
    other = "6f0c8a9e2b7d4c1f9a3e6b8d0c2f4a62"
    async with broker.running(worker(settings(), client, store)):  # type: ignore[arg-type]
        await broker.publish(ENQUEUE_REQUESTS, task("ef" * 16), id=RID)  # no such template
        # cut short: salvaged by its key (requests are keyed by their id)
        await broker.publish_raw(ENQUEUE_REQUESTS, b'{"id": "x", "payl', other.encode())
        await broker.settled(timeout_s=20)
    assert store.docs[RID]["status"] == "failed"
    assert store.docs[other]["status"] == "failed"
    assert "could not be read" in store.docs[other]["error"]
    failed = [e.payload for e in broker.sent(TASK_EVENTS)]
    assert sorted((e.request_id, e.kind) for e in failed) == sorted(
        [(RID, TaskEventKind.ENQUEUE_FAILED), (other, TaskEventKind.ENQUEUE_FAILED)]
    )
    letters = broker.dead_letters()
    assert sorted(d.error_class for d in letters) == ["ClearMLRejected", "SchemaError"]
    assert {d.consumer_group for d in letters} == {settings().group}


async def test_a_request_that_ran_on_before_its_redelivery_is_logged_queued_again(
    clearml: tuple[SimServer, ClearML],
) -> None:
    """A copy killed between recording `queued` and publishing its log, and the monitor saw the
    task run before the redelivery: the redelivery found it settled and published nothing, so
    the logger never counted the request (two-of-everything: 22 counted of 23)."""
    _, client = clearml
    store, broker = Store(), MemBroker()
    history = [{"status": "accepted"}, {"status": "queued"}, {"status": "running"}]
    store.docs[RID] = {"status": "running", "clone_id": "c" * 32, "history": history}
    failed = "6f0c8a9e2b7d4c1f9a3e6b8d0c2f4a62"  # failed before any queue: nothing to say again
    store.docs[failed] = {"status": "failed", "history": [{"status": "failed"}]}
    async with broker.running(worker(settings(), client, store)):  # type: ignore[arg-type]
        await broker.publish(ENQUEUE_REQUESTS, task(), id=RID, user="alice")
        await broker.publish(ENQUEUE_REQUESTS, task(), id=failed, user="alice")
        await broker.settled(timeout_s=20)
    logged = [(e.payload.request_id, e.payload.status) for e in broker.sent(LOGS)]
    assert logged == [(RID, "queued")]
    assert broker.sent(TASK_EVENTS) == []  # the monitor follows it already: no new event
