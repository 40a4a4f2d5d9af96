"""The notifier's Kafka adapter for notifications: published keyed by subject, with the
notification's own id as the envelope id (the idempotency key of every consumer)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from runtime import metrics
from schemas.codec import encode, envelope_for
from schemas.notifications import Notification
from schemas.topics import NOTIFICATIONS
from services.notifier.errors import BusUnavailable


class NotificationPublisher:
    """Publishes one notification and waits for the broker's ack."""

    def __init__(self, producer: AIOKafkaProducer, prefix: str) -> None:
        self._producer, self._topic = producer, NOTIFICATIONS.named(prefix)

    async def __call__(self, notification: Notification) -> None:
        envelope = envelope_for(
            NOTIFICATIONS,
            notification,
            id=notification.id,
            user=notification.user,
            trace={"service": "notifier"},
        )
        try:
            await self._producer.send_and_wait(
                self._topic, encode(envelope), key=notification.subject.encode()
            )
        except KafkaError as exc:
            raise BusUnavailable(f"{self._topic}: {exc!r}") from exc
        metrics.NOTIFICATIONS.labels(notification.kind, notification.status).inc()
