"""The monitor's Kafka adapter: task events out, keyed by request id."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.codec import encode, envelope_for
from schemas.tasks import TaskEvent
from schemas.topics import TASK_EVENTS
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
