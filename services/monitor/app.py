"""Wiring of the monitor: Kafka, MongoDB, ClearML, the task-events consumer and the poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from runtime import metrics
from runtime.clearml import ClearMLClient, open_session
from runtime.consumer import ConsumerLoop, LoopConfig, start_consumer
from runtime.kafka import ensure_topics, start_producer
from runtime.mongo import database, mongo_on
from runtime.retry import RetryPolicy
from schemas.base import utcnow
from schemas.topics import REGISTRY, TASK_EVENTS
from services.monitor.clearml import ClearML
from services.monitor.events import EventPublisher
from services.monitor.handlers import TaskEventHandler
from services.monitor.lifecycle import WatchSet
from services.monitor.poller import Poller
from services.monitor.settings import MonitorSettings
from services.monitor.store import TaskLogStore

SERVICE = "monitor"
log = logging.getLogger(__name__)


async def run(settings: MonitorSettings, stop: asyncio.Event) -> None:
    """Follow enqueued tasks until `stop` is set."""
    metrics.start_metrics(settings.metrics_port)
    await ensure_topics(settings, REGISTRY)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    # Close order is the reverse of opening: both loops have returned (the consumer's last batch
    # committed, the poller's tick finished) before the producer flushes and the clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        http = await stack.enter_async_context(
            open_session(settings.clearml_timeout_s, connections=8)
        )
        producer = await start_producer(stack, settings)
        store = TaskLogStore(database(mongo, settings))
        # The scan comes before the consumer starts, so that no TaskEnqueued event can fall
        # between the two (see handlers.py for why older events are skipped).
        seeded_at = utcnow()
        watch = WatchSet()
        for watched in await retry.run(store.active, "start-up scan of enqueue_logs"):
            watch.add(watched)
        log.info("following %d active requests from MongoDB", len(watch))
        consumer = await start_consumer(stack, settings, TASK_EVENTS, settings.group)
        clearml = ClearML(ClearMLClient.from_settings(http, settings))
        loop = ConsumerLoop(
            service=SERVICE,
            settings=settings,
            spec=TASK_EVENTS,
            consumer=consumer,
            producer=producer,
            handler=TaskEventHandler(watch, seeded_at),
            config=LoopConfig(retry=retry),
        )
        poller = Poller(
            clearml, store, EventPublisher(producer, settings.topic_prefix), watch, settings.poll_s
        )
        await _run_both(loop.run(stop), poller.run(stop), stop)


async def _run_both(
    consume: Coroutine[Any, Any, None], poll: Coroutine[Any, Any, None], stop: asyncio.Event
) -> None:
    """Run the two loops; when one fails, stop the other cleanly, then raise the failure."""
    tasks = [asyncio.create_task(consume, name="consume"), asyncio.create_task(poll, name="poll")]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        task.result()
