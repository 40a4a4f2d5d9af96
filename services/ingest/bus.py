"""Publishing accepted requests to Kafka."""

from __future__ import annotations

import asyncio
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
    """Sends an envelope keyed by its topic's key function (requests: their id) and waits for
    the broker's ack (acks=all), so a 202 means the request is durable on the bus. The wait is
    bounded (`timeout_s`, or less when the caller's deadline is nearer): a broker that is away
    makes a 503 `bus_unavailable` in seconds, never a hang past the client's patience."""

    def __init__(self, producer: Sender, prefix: str, timeout_s: float = 5.0) -> None:
        self._producer, self._prefix, self._timeout_s = producer, prefix, timeout_s

    async def publish(
        self, spec: TopicSpec, envelope: Envelope[Any], *, within_s: float | None = None
    ) -> None:
        """Publish, or raise the 503 ApiError when Kafka does not take it in time."""
        bound = self._timeout_s if within_s is None else min(within_s, self._timeout_s)
        key = spec.key_of(envelope) if spec.key_of is not None else None  # the request id
        send = self._producer.send_and_wait(
            spec.named(self._prefix), encode(envelope), key=key.encode() if key else None
        )
        try:
            await asyncio.wait_for(send, bound)
        except KafkaError as exc:
            log.error("publish to %s failed: %s", spec.name, exc)
            raise bus_unavailable() from exc
        except TimeoutError as exc:
            log.error("publish to %s not acknowledged within %.1f s", spec.name, bound)
            raise bus_unavailable(unsure=True) from exc
