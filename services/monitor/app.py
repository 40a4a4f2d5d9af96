"""Wiring of the monitor: Kafka, MongoDB, ClearML, the task-events consumer and the poller;
the heartbeat feed and the resource poller (resource and queue state)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.database import AsyncDatabase

from runtime import metrics
from runtime.clearml import ClearMLClient, open_session
from runtime.consumer import ConsumerLoop, LoopConfig, make_consumer
from runtime.kafka import ensure_topics, start_producer
from runtime.leader import Leadership
from runtime.lifecycle import run_together
from runtime.mongo import Doc, database, mongo_on
from runtime.retry import RetryPolicy
from schemas.base import utcnow
from schemas.topics import REGISTRY, TASK_EVENTS
from services.monitor.clearml import ClearML
from services.monitor.events import EventPublisher, StatePublisher
from services.monitor.handlers import TaskEventHandler
from services.monitor.heartbeats import HeartbeatFeed
from services.monitor.lifecycle import WatchSet
from services.monitor.poller import Poller
from services.monitor.readmodels import ReadModelStore
from services.monitor.resource_poller import ResourcePoller, ResourceRules
from services.monitor.resources import FreeRule
from services.monitor.settings import MonitorSettings
from services.monitor.shares import Shares
from services.monitor.store import TaskLogStore

SERVICE = "monitor"
log = logging.getLogger(__name__)


async def run(settings: MonitorSettings, stop: asyncio.Event) -> None:
    """Follow enqueued tasks until `stop` is set."""
    metrics.start_metrics(settings.metrics_port, settings.metrics_host)
    await ensure_topics(settings, REGISTRY)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    # Close order is the reverse of opening: every loop has returned (the consumer's last batch
    # committed, the pollers' ticks finished) before the producer flushes and the clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        http = await stack.enter_async_context(
            open_session(settings.clearml_timeout_s, connections=8)
        )
        producer = await start_producer(stack, settings)
        store = TaskLogStore(database(mongo, settings))
        # Each copy follows the requests of its partitions of the task-events topic: loaded
        # from MongoDB when the group assigns them (before their events are read, so that no
        # TaskEnqueued event falls between the two; see handlers.py for why older events are
        # skipped), dropped when it revokes them (shares.py).
        seeded_at = utcnow()
        watch = WatchSet()
        shares = Shares(watch, store, TASK_EVENTS.partitions)
        consumer = make_consumer(
            settings,
            TASK_EVENTS,
            settings.group,
            session_timeout_ms=round(settings.group_session_s * 1000),
            heartbeat_interval_ms=round(settings.group_heartbeat_s * 1000),
        )
        listener = consumer.revoke_drain.chained(shares)  # the batch in hand commits first
        consumer.subscribe([TASK_EVENTS.named(settings.topic_prefix)], listener=listener)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        clearml = ClearML(ClearMLClient.from_settings(http, settings))
        loop = ConsumerLoop(
            service=SERVICE,
            settings=settings,
            spec=TASK_EVENTS,
            consumer=consumer,
            producer=producer,
            handler=TaskEventHandler(watch, seeded_at, shares.owns),
            config=LoopConfig(retry=retry),
        )
        poller = Poller(
            clearml,
            store,
            EventPublisher(producer, settings.topic_prefix),
            watch,
            settings.poll_s,
            vanish_polls=settings.vanish_polls,
            log_lines=settings.error_log_lines,
        )
        loops: dict[str, Coroutine[Any, Any, None]] = {}
        if settings.resources:
            db = database(mongo, settings)

            async def resources(term: asyncio.Event) -> None:
                async with contextlib.AsyncExitStack() as inner:
                    await run_together(
                        await _resource_loops(
                            inner, settings, clearml=clearml, producer=producer, db=db, stop=term
                        ),
                        term,
                    )

            # Resource and queue state: one copy at a time, the one the election makes active
            # (runtime/leader.py); alone, without it.
            if settings.elect:
                loops = {"resources": Leadership(settings, SERVICE, resources).run(stop)}
            else:
                loops = {"resources": resources(stop)}
        await run_together(
            {"consume": loop.run(stop), "poll": poller.run(stop, shares), **loops}, stop
        )


async def _resource_loops(
    stack: contextlib.AsyncExitStack,
    settings: MonitorSettings,
    *,
    clearml: ClearML,
    producer: AIOKafkaProducer,
    db: AsyncDatabase[Doc],
    stop: asyncio.Event,
) -> dict[str, Coroutine[Any, Any, None]]:
    """The heartbeat feed and the resource poller (see heartbeats.py and resource_poller.py)."""
    feed = HeartbeatFeed(settings, settings.heartbeat_lookback_s)
    await feed.start()
    stack.push_async_callback(feed.stop)
    readmodels = ReadModelStore(db)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    previous = await retry.run(readmodels.machines, "start-up read of resources")
    rules = ResourceRules(
        poll_s=settings.resource_poll_s,
        refresh_s=settings.resource_refresh_s,
        missed=settings.heartbeat_missed,
        worker_fresh_s=settings.worker_fresh_s,
        free=FreeRule(settings.free_gpu_util_pct, settings.free_gpu_memory_pct),
        metrics_window_s=settings.queue_metrics_window_s,
        metrics_interval_s=settings.queue_metrics_interval_s,
    )
    poller = ResourcePoller(
        clearml,
        feed.book.latest,
        StatePublisher(producer, settings.topic_prefix),
        readmodels.put,
        rules,
        retry=RetryPolicy(
            attempts=settings.resource_retry_attempts, cap_s=settings.resource_poll_s / 4
        ),
        previous=previous,
    )
    log.info("resource state: every %.1fs, %d machines known", rules.poll_s, len(previous))
    return {"heartbeats": feed.run(stop), "resources": poller.run(stop)}
