"""Wiring of the enqueuer: MongoDB, ClearML, and its worker (runtime/worker.py): enqueue requests
in; task events, request logs and notifications out."""

from __future__ import annotations

import asyncio
import contextlib

from runtime.clearml import ClearMLClient, open_session
from runtime.consumer import LoopConfig
from runtime.mongo import database, mongo_on
from runtime.retry import RetryPolicy
from runtime.worker import Worker, prepare
from schemas.topics import ENQUEUE_REQUESTS, LOGS, NOTIFICATIONS, TASK_EVENTS
from services.enqueuer.clearml import ClearML
from services.enqueuer.handlers import EnqueueHandler
from services.enqueuer.settings import EnqueuerSettings
from services.enqueuer.store import EnqueueLogStore

SERVICE = "enqueuer"


def worker(settings: EnqueuerSettings, clearml: ClearML, store: EnqueueLogStore) -> Worker:
    """What the enqueuer consumes and publishes, and the handler between."""
    worker = Worker(SERVICE, settings, linger_ms=settings.linger_ms)
    handler = EnqueueHandler(
        clearml,
        store,
        events=worker.publisher(TASK_EVENTS),
        notifications=worker.publisher(NOTIFICATIONS),
        logs=worker.publisher(LOGS),
    )
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    worker.subscribe(
        ENQUEUE_REQUESTS,
        handler,
        group=settings.group,
        on_failure=handler.on_failure,
        config=LoopConfig(concurrency=settings.concurrency, retry=retry),
    )
    return worker


async def run(settings: EnqueuerSettings, stop: asyncio.Event) -> None:
    """Consume enqueue requests until `stop` is set."""
    await prepare(settings)
    # Close order is the reverse of opening: the worker's consumer stops (its last batch already
    # committed by the loop) before its producer flushes and the clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        http = await stack.enter_async_context(
            open_session(settings.clearml_timeout_s, settings.concurrency)
        )
        clearml = ClearML(ClearMLClient.from_settings(http, settings))
        enqueuer = worker(settings, clearml, EnqueueLogStore(database(mongo, settings)))
        await enqueuer.start(stack)
        await enqueuer.run(stop)
