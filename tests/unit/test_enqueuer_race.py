"""Two deliveries of one request in flight at once (a rebalance hands the partition over while
the first is mid-call): the second finds the clone `created`, and by the time it writes the
parameters the first has enqueued it. The second must record the request queued, not fail it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.clearml import ClearMLRejected
from runtime.worker import bound
from schemas.codec import envelope_for
from schemas.enqueue import EnqueueTask
from schemas.topics import ENQUEUE_REQUESTS, LOGS, NOTIFICATIONS, TASK_EVENTS
from services.enqueuer.handlers import EnqueueHandler


class RacedClearML:
    """The clone exists (found by its tag) and another delivery enqueues it meanwhile."""

    def __init__(self, status_after: str) -> None:
        self.status_after = status_after
        self.enqueued = 0

    async def find_by_tag(self, tag: str) -> dict[str, Any]:
        return {"id": "clone-1", "status": "created"}

    async def set_hyperparams(self, clone_id: str, params: object) -> None:
        raise ClearMLRejected(400, 110, "Invalid task status", "not editable")

    async def statuses(self, ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": ids[0], "status": self.status_after}]


class Store:
    def __init__(self) -> None:
        self.queued: list[str] = []

    async def claim(self, env: Any) -> dict[str, Any]:
        return {"status": "accepted"}  # claimed before: a redelivery

    async def record_queued(self, env: Any, clone_id: str, *_: object) -> None:
        self.queued.append(clone_id)


class Producer:
    async def send(self, *_: object, **__: object) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(self, *_: object, **__: object) -> None:
        return None


def handler_for(clearml: RacedClearML, store: Store) -> EnqueueHandler:
    producer = Producer()
    return EnqueueHandler(
        clearml,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        events=bound(TASK_EVENTS, producer, "enqueuer"),
        notifications=bound(NOTIFICATIONS, producer, "enqueuer"),
        logs=bound(LOGS, producer, "enqueuer"),
    )


def envelope() -> Any:
    task = EnqueueTask(task_id="ab" * 16, template_task_id="cd" * 16, queue_name="gpu-a100")
    return envelope_for(ENQUEUE_REQUESTS, task, user="alice")


async def test_a_clone_another_delivery_enqueued_is_recorded_queued() -> None:
    store = Store()
    handler = handler_for(RacedClearML("queued"), store)
    await handler(envelope())
    assert store.queued == ["clone-1"]


async def test_a_clone_still_created_is_a_real_refusal() -> None:
    store = Store()
    handler = handler_for(RacedClearML("created"), store)
    with pytest.raises(ClearMLRejected):
        await handler(envelope())
    assert store.queued == []
