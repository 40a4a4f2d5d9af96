"""Wiring of the monitor: MongoDB, ClearML, its worker (runtime/worker.py: task events in; task
events, resource and queue state out), the poller; the heartbeat feed and the resource poller
(resource and queue state)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.clearml import ClearMLClient, open_session
from runtime.consumer import LoopConfig
from runtime.leader import Leadership
from runtime.lifecycle import run_together
from runtime.mongo import Doc, database, mongo_on
from runtime.retry import RetryPolicy
from runtime.worker import Worker, prepare
from schemas.base import utcnow
from schemas.topics import QUEUE_STATE, RESOURCE_STATE, TASK_EVENTS
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


def worker(
    settings: MonitorSettings, watch: WatchSet, shares: Shares, *, seeded_at: datetime
) -> Worker:
    """What the monitor consumes (task events: the requests its partitions follow) and
    publishes (task events from its polls; resource and queue state)."""
    worker = Worker(SERVICE, settings)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    worker.subscribe(
        TASK_EVENTS,
        TaskEventHandler(watch, seeded_at, shares.owns),
        group=settings.group,
        name="consume",
        config=LoopConfig(retry=retry),
        listener=shares,  # after the batch in hand commits
        session_timeout_ms=round(settings.group_session_s * 1000),
        heartbeat_interval_ms=round(settings.group_heartbeat_s * 1000),
    )
    worker.publisher(TASK_EVENTS)
    worker.publisher(RESOURCE_STATE)
    worker.publisher(QUEUE_STATE)
    return worker


async def run(settings: MonitorSettings, stop: asyncio.Event) -> None:
    """Follow enqueued tasks until `stop` is set."""
    await prepare(settings)
    # Close order is the reverse of opening: every loop has returned (the consumer's last batch
    # committed, the pollers' ticks finished) before the producer flushes and the clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        http = await stack.enter_async_context(
            open_session(settings.clearml_timeout_s, connections=8)
        )
        store = TaskLogStore(database(mongo, settings))
        # Each copy follows the requests of its partitions of the task-events topic: loaded
        # from MongoDB when the group assigns them (before their events are read, so that no
        # TaskEnqueued event falls between the two; see handlers.py for why older events are
        # skipped), dropped when it revokes them (shares.py).
        watch = WatchSet()
        shares = Shares(watch, store, TASK_EVENTS.partitions)
        monitor = worker(settings, watch, shares, seeded_at=utcnow())
        states = StatePublisher(monitor.publisher(RESOURCE_STATE), monitor.publisher(QUEUE_STATE))
        await monitor.start(stack)
        clearml = ClearML(ClearMLClient.from_settings(http, settings))
        poller = Poller(
            clearml,
            store,
            EventPublisher(monitor.publisher(TASK_EVENTS)),
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
                            inner, settings, clearml=clearml, states=states, db=db, stop=term
                        ),
                        term,
                    )

            # Resource and queue state: one copy at a time, the one the election makes active
            # (runtime/leader.py); alone, without it.
            if settings.elect:
                loops = {"resources": Leadership(settings, SERVICE, resources).run(stop)}
            else:
                loops = {"resources": resources(stop)}
        await monitor.run(stop, also={"poll": poller.run(stop, shares), **loops})


async def _resource_loops(
    stack: contextlib.AsyncExitStack,
    settings: MonitorSettings,
    *,
    clearml: ClearML,
    states: StatePublisher,
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
        states,
        readmodels.put,
        rules,
        retry=RetryPolicy(
            attempts=settings.resource_retry_attempts, cap_s=settings.resource_poll_s / 4
        ),
        previous=previous,
    )
    log.info("resource state: every %.1fs, %d machines known", rules.poll_s, len(previous))
    return {"heartbeats": feed.run(stop), "resources": poller.run(stop)}
