"""What a real ClearML server does that an enqueue must survive, against the simulator (served on
127.0.0.1, as faithful as the server where it matters) with the store and the producer as
doubles: the 121 race, a queue re-created under its name, refused credentials, and the two
crash windows between recording `queued` and publishing TaskEnqueued."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiokafka.errors import KafkaConnectionError

from clearml_sim import queues
from clearml_sim.demo import DEMO_TEMPLATE_IDS
from clearml_sim.testing import SimServer
from runtime.clearml import ClearMLClient, ClearMLUnauthorized
from runtime.retry import RetryPolicy
from runtime.worker import bound
from schemas.codec import decode, envelope_for
from schemas.enqueue import EnqueueTask
from schemas.notifications import Notification
from schemas.tasks import TaskEventKind
from schemas.topics import ENQUEUE_REQUESTS, LOGS, NOTIFICATIONS, TASK_EVENTS
from services.enqueuer.clearml import ClearML
from services.enqueuer.errors import PublishFailed
from services.enqueuer.handlers import REQUEST_TAG, EnqueueHandler

PARKING = DEMO_TEMPLATE_IDS["parking-occupancy-train"]


class Crash(BaseException):
    """The worker dies here (not an Exception: nothing in the handler may catch it)."""


class Store:
    """enqueue_logs as the handler sees it: claims, the queued record, failures."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.queued: list[str] = []
        self.failed: list[str] = []

    async def claim(self, env: Any) -> dict[str, Any] | None:
        prior = self.docs.get(env.id)
        if prior is None:
            self.docs[env.id] = {"status": "accepted"}
        return dict(prior) if prior is not None else None

    async def record_queued(
        self, env: Any, clone_id: str, _at: object, watched: bool | None, _lat: object
    ) -> None:
        self.docs[env.id] = {"status": "queued", "clone_id": clone_id, "queue_watched": watched}
        self.queued.append(clone_id)

    async def record_failed(self, env: Any, message: str) -> bool:
        if self.docs.get(env.id, {}).get("status") in ("queued", "failed"):
            return False
        self.docs[env.id] = {"status": "failed", "error": message}
        self.failed.append(message)
        return True


class Producer:
    """Sends land in `sent` (topic, value); `fail` holds what the next sends raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.fail: list[BaseException] = []

    async def send(self, *_: object, **__: object) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((topic, value or b""))

    def events(self, kind: TaskEventKind) -> list[Any]:
        topic = TASK_EVENTS.named("")
        found = [decode(TASK_EVENTS, v).payload for t, v in self.sent if t == topic]
        return [e for e in found if e.kind is kind]


@pytest.fixture
async def served() -> AsyncIterator[SimServer]:
    async with SimServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def clearml_for(served: SimServer, http: aiohttp.ClientSession, secret: str = "") -> ClearML:
    client = ClearMLClient(http, served.url, served.access_key, secret or served.secret_key)
    return ClearML(client)


def handler_for(clearml: ClearML, store: Store, producer: Producer) -> EnqueueHandler:
    return EnqueueHandler(
        clearml,
        store,  # type: ignore[arg-type]
        events=bound(TASK_EVENTS, producer, "enqueuer"),
        notifications=bound(NOTIFICATIONS, producer, "enqueuer"),
        logs=bound(LOGS, producer, "enqueuer"),
    )


def request(queue: str = "gpu-a100") -> Any:
    task = EnqueueTask(task_id="ab" * 16, template_task_id=PARKING, queue_name=queue)
    return envelope_for(ENQUEUE_REQUESTS, task, user="alice")


async def test_two_deliveries_enqueuing_one_clone_at_once_both_record_it_queued(
    served: SimServer, http: aiohttp.ClientSession
) -> None:
    """A rebalance: two deliveries of one request find the same `created` clone and enqueue it
    at once; the server's conditional update makes the loser's call 400/121."""
    env = request()
    clearml = clearml_for(served, http)
    clone = await clearml.clone(PARKING, "raced", ["mlbus", REQUEST_TAG + env.id])
    store, producer = Store(), Producer()
    store.docs[env.id] = {"status": "accepted"}  # both are redeliveries: they look for the clone
    served.sim.faults.configure(latency_ms=80, endpoints=["tasks.enqueue"])
    first, second = handler_for(clearml, store, producer), handler_for(clearml, store, producer)
    await asyncio.gather(first(env), second(env))
    assert store.queued == [clone, clone]
    assert store.failed == []
    # Enqueued (once: the loser's call was refused); the simulator's agent may have pulled it
    # already on a loaded machine.
    assert served.state.tasks[clone]["status"] in {"queued", "in_progress", "completed"}


async def test_a_queue_recreated_under_its_name_is_looked_up_again(
    served: SimServer, http: aiohttp.ClientSession
) -> None:
    clearml = clearml_for(served, http)
    store, producer = Store(), Producer()
    handler = handler_for(clearml, store, producer)
    await handler(request("gpu-t4"))  # caches the queue's id
    state = served.state
    old = queues.find_by_name(state, "gpu-t4")
    assert old is not None
    for tid in list(state.queue_entries[old]):
        queues.remove(state, tid)
    del state.queues[old], state.queue_entries[old], state.queue_by_name["gpu-t4"]
    new = queues.create_queue(state, "gpu-t4")["id"]
    await handler(request("gpu-t4"))
    assert store.failed == []
    assert served.state.tasks[store.queued[-1]]["execution"]["queue"] == new


async def test_refused_credentials_are_retried_and_told_to_operators_once(
    served: SimServer, http: aiohttp.ClientSession
) -> None:
    clearml = clearml_for(served, http, secret="rotated-away")
    store, producer = Store(), Producer()
    handler = handler_for(clearml, store, producer)
    policy = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.01)
    for _ in range(2):
        with pytest.raises(ClearMLUnauthorized):
            await policy.run(lambda: handler(request()), "handler")
    topic = NOTIFICATIONS.named("")
    notes = [decode(NOTIFICATIONS, v).payload for t, v in producer.sent if t == topic]
    assert len(notes) == 1
    note: Notification = notes[0]
    assert (note.kind, note.user, note.status) == ("clearml_unavailable", None, "firing")
    assert "invalid credentials" in note.message.lower()
    await handler.on_failure(request(), ClearMLUnauthorized(22, "Unauthorized"))
    assert "credentials" in store.failed[-1]


async def test_a_crash_between_the_record_and_the_event_is_healed_by_the_redelivery(
    served: SimServer, http: aiohttp.ClientSession
) -> None:
    env = request()
    store, producer = Store(), Producer()
    producer.fail = [Crash()]
    with pytest.raises(Crash):
        await handler_for(clearml_for(served, http), store, producer)(env)
    assert store.docs[env.id]["status"] == "queued"
    assert producer.events(TaskEventKind.ENQUEUED) == []
    await handler_for(clearml_for(served, http), store, producer)(env)  # the redelivery
    [event] = producer.events(TaskEventKind.ENQUEUED)
    assert event.request_id == env.id
    assert event.clone_id == store.docs[env.id]["clone_id"]
    assert len(served.state.tag_index[REQUEST_TAG + env.id]) == 1


async def test_a_broker_refusing_the_event_is_retried_and_never_fails_a_queued_request(
    served: SimServer, http: aiohttp.ClientSession
) -> None:
    env = request()
    store, producer = Store(), Producer()
    handler = handler_for(clearml_for(served, http), store, producer)
    producer.fail = [KafkaConnectionError(), KafkaConnectionError()]
    await RetryPolicy(attempts=4, base_s=0.01, cap_s=0.01).run(lambda: handler(env), "handler")
    [event] = producer.events(TaskEventKind.ENQUEUED)
    assert event.clone_id == store.docs[env.id]["clone_id"]
    assert len(served.state.tag_index[REQUEST_TAG + env.id]) == 1
    # A broker away for longer than the retry bound: the failure hook must leave it queued.
    other = request()
    producer.fail = [KafkaConnectionError()] * 3
    with pytest.raises(PublishFailed) as caught:
        await RetryPolicy(attempts=2, base_s=0.01, cap_s=0.01).run(
            lambda: handler(other), "handler"
        )
    await handler.on_failure(other, caught.value)
    assert store.docs[other.id]["status"] == "queued"
    assert producer.events(TaskEventKind.ENQUEUE_FAILED) == []
