"""Wiring of the logger: Kafka, MongoDB, and two consumer loops (mlbus.logs and
mlbus.events.task) folding into one store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from runtime import metrics
from runtime.consumer import ConsumerLoop, LoopConfig, start_consumer
from runtime.doclocks import DocLocks
from runtime.kafka import ensure_topics, start_producer
from runtime.lifecycle import run_together
from runtime.mongo import database, is_ferretdb, mongo_on
from runtime.retry import RetryPolicy
from schemas.topics import LOGS, REGISTRY, TASK_EVENTS
from services.logger.handlers import Folder, LogsHandler, TaskEventsHandler
from services.logger.settings import LoggerSettings
from services.logger.store import ViewStore

SERVICE = "logger"
log = logging.getLogger(__name__)


async def run(settings: LoggerSettings, stop: asyncio.Event) -> None:
    """Fold log and task events into the read models until `stop` is set."""
    metrics.start_metrics(settings.metrics_port, settings.metrics_host)
    await ensure_topics(settings, REGISTRY)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    # Close order is the reverse of opening: both loops have returned (their last batches folded
    # and committed) before the consumers leave their groups, the producer (dead letters)
    # flushes and the Mongo client closes.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        producer = await start_producer(stack, settings)
        db = database(mongo, settings)
        # FerretDB: locks (its updates are not atomic) and the hand-made log index (SQLite has
        # no index but `_id`); MongoDB: the view documents' own indexes answer the log pages.
        ferretdb = await is_ferretdb(db)
        store = ViewStore(
            db, settings.write_concurrency, DocLocks(db, on=ferretdb), buckets=ferretdb
        )
        if not ferretdb:
            await retry.run(store.create_view_indexes, "create the log views' indexes")
        if settings.register_views:
            created = await retry.run(store.register_views, "register live views")
            if created:
                log.info("registered views: %s", ", ".join(created))
        folder = Folder(store, settings.max_batch)
        config = LoopConfig(retry=retry, max_batch=settings.max_batch)
        loops: dict[str, Coroutine[Any, Any, None]] = {}
        for name, spec, handler in (
            ("logs", LOGS, LogsHandler(folder)),
            ("tasks", TASK_EVENTS, TaskEventsHandler(folder)),
        ):
            consumer = await start_consumer(stack, settings, spec, f"{settings.group}-{name}")
            loop = ConsumerLoop(
                service=SERVICE,
                settings=settings,
                spec=spec,
                consumer=consumer,
                producer=producer,
                handler=handler,
                config=config,
            )
            loops[name] = loop.run(stop)
        await run_together(loops, stop)
