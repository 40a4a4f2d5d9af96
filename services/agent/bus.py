"""Publishing heartbeats to Kafka, keyed by machine id (the topic's key function); Kafka errors
become PublishFailedError."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from runtime import metrics
from runtime.worker import Publisher
from schemas.heartbeat import AgentHeartbeat
from services.agent.errors import PublishFailedError


class HeartbeatPublisher:
    """Sends one tick's heartbeats together, so that many simulated machines share batches."""

    def __init__(self, heartbeats: Publisher[AgentHeartbeat]) -> None:
        self._heartbeats = heartbeats

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
        try:
            await (await self._heartbeats.hand(hb))  # counted as published when acknowledged
            metrics.observe_gpus(hb)
        except KafkaError as exc:
            raise PublishFailedError(hb.machine_id, f"{type(exc).__name__}: {exc}") from exc
