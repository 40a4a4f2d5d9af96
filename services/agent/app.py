"""Wiring of the agent: the probes, the producer, and the heartbeat tick loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

from runtime import metrics
from runtime.kafka import ensure_topics, start_producer
from runtime.worker import bound
from schemas.heartbeat import AgentHeartbeat
from schemas.topics import HEARTBEATS
from services.agent.bus import HeartbeatPublisher
from services.agent.collector import Collector, open_collector
from services.agent.settings import AgentSettings

SERVICE = "agent"
log = logging.getLogger(__name__)

#: `--once` waits this long between priming psutil's CPU counter and reading it.
ONCE_CPU_WINDOW_S = 0.2


async def run(settings: AgentSettings, stop: asyncio.Event) -> None:
    """Publish heartbeats every `interval_s` until `stop` is set."""
    metrics.start_metrics(settings.metrics_port, settings.metrics_host)
    await ensure_topics(settings, [HEARTBEATS])
    # Closed in reverse: the producer flushes the last heartbeats, then NVML shuts down.
    with contextlib.ExitStack() as sync_stack:
        collector = open_collector(settings)
        sync_stack.callback(collector.close)
        async with contextlib.AsyncExitStack() as stack:
            producer = await start_producer(stack, settings, linger_ms=settings.linger_ms)
            publisher = HeartbeatPublisher(
                bound(HEARTBEATS, producer, SERVICE, settings.topic_prefix)
            )
            metrics.ready(SERVICE, True)
            try:
                await HeartbeatLoop(collector, publisher, settings.interval_s).run(stop)
            finally:
                metrics.ready(SERVICE, False)


def read_once(settings: AgentSettings) -> list[AgentHeartbeat]:
    """One heartbeat per machine, without Kafka: what an operator runs to check a GPU box."""
    collector = open_collector(settings)
    try:
        time.sleep(ONCE_CPU_WINDOW_S)
        return collector.collect()
    finally:
        collector.close()


def next_tick(due: float, interval_s: float, now: float) -> float:
    """The next tick after `due`; ticks missed while a read or publish ran long are skipped."""
    due += interval_s
    if due <= now:
        due += math.ceil((now - due) / interval_s + 1e-9) * interval_s
    return due


class HeartbeatLoop:
    """Read, publish, sleep until the next tick. Nothing that fails in a tick ends the loop:
    the failure is logged (once while it lasts) and the next tick starts afresh."""

    def __init__(
        self, collector: Collector, publisher: HeartbeatPublisher, interval_s: float
    ) -> None:
        self._collector = collector
        self._publisher = publisher
        self._interval_s = interval_s
        self._lost = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; the tick in progress finishes first."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set():
            await self.tick()
            due = next_tick(due, self._interval_s, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=due - loop.time())

    async def tick(self) -> None:
        """One read and publish of every machine."""
        try:
            # NVML calls block (tens of ms per GPU, more when a GPU is in trouble).
            heartbeats = await asyncio.to_thread(self._collector.collect)
            failed = await self._publisher.publish(heartbeats)
        except Exception:
            log.exception("heartbeat tick failed; the next tick tries again")
            return
        self._note(len(failed), len(heartbeats), failed[0] if failed else None)

    def _note(self, n_failed: int, n_sent: int, first: Exception | None) -> None:
        if first is not None:
            level = logging.WARNING if self._lost == 0 else logging.DEBUG
            log.log(level, "%d of %d heartbeats not published: %s", n_failed, n_sent, first)
        elif self._lost:
            log.info("publishing again after %d lost heartbeats", self._lost)
        self._lost = self._lost + n_failed if first is not None else 0
