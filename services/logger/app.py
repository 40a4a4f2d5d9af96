"""Wiring of the logger: MongoDB, and its worker (runtime/worker.py): two subscriptions
(mlbus.logs and mlbus.events.task) folding into one store."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from runtime.consumer import LoopConfig
from runtime.doclocks import DocLocks
from runtime.mongo import database, is_ferretdb, mongo_on
from runtime.retry import RetryPolicy
from runtime.worker import Worker, prepare
from schemas.topics import LOGS, TASK_EVENTS
from services.logger.handlers import Folder, LogsHandler, TaskEventsHandler
from services.logger.settings import LoggerSettings
from services.logger.store import ViewStore

SERVICE = "logger"
log = logging.getLogger(__name__)


def worker(settings: LoggerSettings, store: ViewStore) -> Worker:
    """What the logger consumes (two topics, each in a group of its own) and the one fold both
    feed."""
    worker = Worker(SERVICE, settings)
    folder = Folder(store, settings.max_batch)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    config = LoopConfig(retry=retry, max_batch=settings.max_batch)
    worker.subscribe(
        LOGS, LogsHandler(folder), group=f"{settings.group}-logs", name="logs", config=config
    )
    worker.subscribe(
        TASK_EVENTS,
        TaskEventsHandler(folder),
        group=f"{settings.group}-tasks",
        name="tasks",
        config=config,
    )
    return worker


async def run(settings: LoggerSettings, stop: asyncio.Event) -> None:
    """Fold log and task events into the read models until `stop` is set."""
    await prepare(settings)
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    # Close order is the reverse of opening: both loops have returned (their last batches folded
    # and committed) before the consumers leave their groups, the producer (dead letters)
    # flushes and the Mongo client closes.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        db = database(mongo, settings)
        # FerretDB: locks (its updates are not atomic) and the hand-made log index (SQLite has
        # no index but `_id`); MongoDB: the view documents' own indexes answer the log pages.
        ferretdb = await is_ferretdb(db)
        store = ViewStore(
            db, settings.write_concurrency, DocLocks(db, on=ferretdb), buckets=ferretdb
        )
        logger = worker(settings, store)
        await logger.start(stack)
        if not ferretdb:
            await retry.run(store.create_view_indexes, "create the log views' indexes")
        if settings.register_views:
            created = await retry.run(store.register_views, "register live views")
            if created:
                log.info("registered views: %s", ", ".join(created))
        await logger.run(stop)
