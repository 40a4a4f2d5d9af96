"""The monitor's Kafka adapter: task events out, keyed by request id; resource and queue
states out, keyed by machine id and queue id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from runtime import metrics
from schemas.codec import encode, envelope_for
from schemas.resources import QueueState, ResourceState
from schemas.tasks import TaskEvent
from schemas.topics import QUEUE_STATE, RESOURCE_STATE, TASK_EVENTS
from services.monitor.errors import PublishFailed


class EventPublisher:
    """Publishes TaskEvents to the task-events topic and waits for the broker's ack."""

    def __init__(self, producer: AIOKafkaProducer, prefix: str) -> None:
        self._producer, self._topic = producer, TASK_EVENTS.named(prefix)

    async def __call__(self, event: TaskEvent) -> None:
        envelope = envelope_for(TASK_EVENTS, event, id=event.request_id, user=event.user)
        try:
            await self._producer.send_and_wait(
                self._topic, encode(envelope), key=event.request_id.encode()
            )
        except KafkaError as exc:
            raise PublishFailed(f"{self._topic}: {exc!r}") from exc


class StatePublisher:
    """Publishes resource states (keyed by machine id) and queue states (keyed by queue id) to
    their compacted topics; all of one tick are sent together, then their acks awaited."""

    def __init__(self, producer: AIOKafkaProducer, prefix: str) -> None:
        self._producer, self._prefix = producer, prefix

    async def __call__(self, states: Sequence[ResourceState | QueueState]) -> None:
        try:
            deliveries = [await self._send(s) for s in states]
            await asyncio.gather(*deliveries)
        except KafkaError as exc:
            raise PublishFailed(f"state topics: {exc!r}") from exc
        for state in states:
            spec = RESOURCE_STATE if isinstance(state, ResourceState) else QUEUE_STATE
            metrics.MESSAGES_PUBLISHED.labels("monitor", spec.name).inc()

    async def _send(self, state: ResourceState | QueueState) -> asyncio.Future[object]:
        if isinstance(state, ResourceState):
            spec, key = RESOURCE_STATE, state.machine_id
        else:
            spec, key = QUEUE_STATE, state.queue_id
        envelope = envelope_for(spec, state)
        future: asyncio.Future[object] = await self._producer.send(
            spec.named(self._prefix), encode(envelope), key=key.encode()
        )
        return future
