"""The notifier's Kafka adapter for notifications: published keyed by subject, with the
notification's own id as the envelope id (the idempotency key of every consumer)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from runtime import metrics
from runtime.kafka import client_auth, partitions_of
from runtime.settings import BusSettings
from schemas.codec import SchemaError, decode, encode, envelope_for
from schemas.notifications import Notification
from schemas.topics import NOTIFICATIONS
from services.notifier.errors import BusUnavailable

log = logging.getLogger(__name__)


class NotificationPublisher:
    """Publishes one notification and waits for the broker's ack."""

    def __init__(
        self, producer: AIOKafkaProducer, prefix: str, told: set[str] | None = None
    ) -> None:
        self._producer, self._topic = producer, NOTIFICATIONS.named(prefix)
        #: Ids already on the topic (read back at a takeover): not published again.
        self._told = told or set()

    async def __call__(self, notification: Notification) -> None:
        if notification.id in self._told:
            log.info("notification %s was told before the takeover; not again", notification.id)
            return
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


async def told_since(settings: BusSettings, seconds: float) -> set[str]:
    """The ids of the notifications published in the last `seconds`, up to the topic's end:
    what a copy taking over must not tell again (the one before may have published a
    notification and died before its outbox record or its input's offset said so)."""
    topic = NOTIFICATIONS.named(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.instance}-told",
        group_id=None,
        enable_auto_commit=False,
        **client_auth(settings),
    )
    await consumer.start()
    told: set[str] = set()
    try:
        tps = [
            TopicPartition(topic, p) for p in await partitions_of(settings.kafka_bootstrap, topic)
        ]
        consumer.assign(tps)
        since = int((time.time() - seconds) * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, since))
        ends = await consumer.end_offsets(tps)
        left = {tp for tp in tps if starts.get(tp) is not None}  # the others: nothing that recent
        for tp in left:
            consumer.seek(tp, starts[tp].offset)
        deadline = time.monotonic() + 30
        while left:
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
            if not left:
                break
            if time.monotonic() > deadline:
                raise BusUnavailable(f"{topic}: not read back to its end in 30 s")
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        told.add(decode(NOTIFICATIONS, record.value).id)
                    except SchemaError:
                        continue
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return told
