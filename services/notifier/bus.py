"""The notifier's Kafka adapter for notifications: published keyed by subject, with the
notification's own id as the envelope id (the idempotency key of every consumer)."""

from __future__ import annotations

import contextlib
import logging
from collections import deque

from aiokafka.errors import KafkaError

from runtime import metrics
from runtime.broadcast import reading, to_end
from runtime.settings import BusSettings
from runtime.worker import Publisher
from schemas.codec import SchemaError, decode
from schemas.notifications import Notification
from schemas.topics import NOTIFICATIONS
from services.notifier.errors import BusUnavailable

log = logging.getLogger(__name__)


#: Ids of the notifications this copy published that it remembers, so as not to tell one again.
REMEMBERED = 100_000


class NotificationPublisher:
    """Publishes one notification and waits for the broker's ack; one whose id is already on
    the topic (read back at a takeover, or published here since) is not published again: a task
    event delivered twice (the monitor publishes its events at least once) is told once."""

    def __init__(
        self, notifications: Publisher[Notification], told: set[str] | None = None
    ) -> None:
        self._notifications = notifications
        self._told = set(told or ())
        self._order: deque[str] = deque(self._told)

    async def __call__(self, notification: Notification) -> None:
        if notification.id in self._told:
            log.info("notification %s was told already; not again", notification.id)
            return
        try:
            await self._notifications.send(
                notification,
                id=notification.id,
                user=notification.user,
                trace={"service": "notifier"},
            )
        except KafkaError as exc:
            raise BusUnavailable(f"{self._notifications.topic}: {exc!r}") from exc
        metrics.NOTIFICATIONS.labels(notification.kind, notification.status).inc()
        self._told.add(notification.id)
        self._order.append(notification.id)
        while len(self._order) > REMEMBERED:
            self._told.discard(self._order.popleft())


async def told_since(settings: BusSettings, seconds: float) -> set[str]:
    """The ids of the notifications published in the last `seconds`, up to the topic's end:
    what a copy taking over must not tell again (the one before may have published a
    notification and died before its outbox record or its input's offset said so)."""
    topic = NOTIFICATIONS.named(settings.topic_prefix)
    told: set[str] = set()
    async with reading(settings, topic, name="told", start=seconds) as (consumer, tps):
        try:
            async for record in to_end(consumer, tps):
                with contextlib.suppress(SchemaError):
                    told.add(decode(NOTIFICATIONS, record.value).id)
        except TimeoutError as exc:
            raise BusUnavailable(f"{topic}: not read back to its end in 30 s") from exc
    return told
