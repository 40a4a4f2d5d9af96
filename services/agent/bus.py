"""Publishing heartbeats to Kafka, keyed by machine id; Kafka errors become PublishFailedError."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from runtime import metrics
from schemas.codec import encode, envelope_for
from schemas.heartbeat import AgentHeartbeat
from schemas.topics import HEARTBEATS
from services.agent.errors import PublishFailedError


class HeartbeatPublisher:
    """Sends one tick's heartbeats together, so that many simulated machines share batches."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, heartbeats: Sequence[AgentHeartbeat]) -> list[PublishFailedError]:
        """Send every heartbeat and wait for the broker; return the ones that failed."""
        results = await asyncio.gather(
            *(self._send(hb) for hb in heartbeats), return_exceptions=True
        )
        failed: list[PublishFailedError] = []
        for r in results:
            if isinstance(r, PublishFailedError):
                failed.append(r)
            elif isinstance(r, BaseException):
                raise r
        return failed

    async def _send(self, hb: AgentHeartbeat) -> None:
        value = encode(envelope_for(HEARTBEATS, hb))
        try:
            delivery = await self._producer.send(self._topic, value, key=hb.machine_id.encode())
            await delivery
            metrics.MESSAGES_PUBLISHED.labels("agent", HEARTBEATS.name).inc()
            metrics.observe_gpus(hb)
        except KafkaError as exc:
            raise PublishFailedError(hb.machine_id, f"{type(exc).__name__}: {exc}") from exc
