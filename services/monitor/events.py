"""The monitor's Kafka adapter: task events out, keyed by request id; resource and queue
states out, keyed by machine id and queue id (the topics' key functions)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from runtime.worker import Publisher
from schemas.resources import QueueState, ResourceState
from schemas.tasks import TaskEvent
from services.monitor.errors import PublishFailed


class EventPublisher:
    """Publishes TaskEvents to the task-events topic and waits for the broker's ack."""

    def __init__(self, events: Publisher[TaskEvent]) -> None:
        self._events = events

    async def __call__(self, event: TaskEvent) -> None:
        try:
            await self._events.send(event, id=event.request_id, user=event.user)
        except KafkaError as exc:
            raise PublishFailed(f"{self._events.topic}: {exc!r}") from exc


class StatePublisher:
    """Publishes resource states (keyed by machine id) and queue states (keyed by queue id) to
    their compacted topics; all of one tick are sent together, then their acks awaited."""

    def __init__(self, resources: Publisher[ResourceState], queues: Publisher[QueueState]) -> None:
        self._resources, self._queues = resources, queues

    async def __call__(self, states: Sequence[ResourceState | QueueState]) -> None:
        try:
            deliveries = [await self._send(s) for s in states]
            await asyncio.gather(*deliveries)
        except KafkaError as exc:
            raise PublishFailed(f"state topics: {exc!r}") from exc

    async def _send(self, state: ResourceState | QueueState) -> asyncio.Future[object]:
        if isinstance(state, ResourceState):
            return await self._resources.hand(state)
        return await self._queues.hand(state)
