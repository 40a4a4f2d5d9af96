"""Publishing accepted requests to Kafka."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.errors import KafkaError

from runtime.kafka import Sender
from schemas.base import Envelope
from schemas.codec import encode
from schemas.topics import TopicSpec
from services.ingest.errors import bus_unavailable

log = logging.getLogger(__name__)


class Publisher:
    """Sends an envelope keyed by its request id and waits for the broker's ack (acks=all), so a
    202 means the request is durable on the bus."""

    def __init__(self, producer: Sender, prefix: str) -> None:
        self._producer, self._prefix = producer, prefix

    async def publish(self, spec: TopicSpec, envelope: Envelope[Any]) -> None:
        """Publish, or raise the 503 ApiError when Kafka does not take it."""
        try:
            await self._producer.send_and_wait(
                spec.named(self._prefix), encode(envelope), key=envelope.id.encode()
            )
        except KafkaError as exc:
            log.error("publish to %s failed: %s", spec.name, exc)
            raise bus_unavailable() from exc
