"""Wiring of the enqueuer: Kafka, MongoDB, ClearML, and the consumer loop."""

from __future__ import annotations

import asyncio
import contextlib

from runtime import metrics
from runtime.clearml import ClearMLClient, open_session
from runtime.consumer import ConsumerLoop, LoopConfig, start_consumer
from runtime.kafka import ensure_topics, start_producer
from runtime.mongo import database, mongo_on
from runtime.retry import RetryPolicy
from schemas.topics import ENQUEUE_REQUESTS, REGISTRY
from services.enqueuer.clearml import ClearML
from services.enqueuer.handlers import EnqueueHandler
from services.enqueuer.settings import EnqueuerSettings
from services.enqueuer.store import EnqueueLogStore

SERVICE = "enqueuer"


async def run(settings: EnqueuerSettings, stop: asyncio.Event) -> None:
    """Consume enqueue requests until `stop` is set."""
    metrics.start_metrics(settings.metrics_port, settings.metrics_host)
    await ensure_topics(settings, REGISTRY)
    # Close order is the reverse of opening: the consumer stops (its last batch already
    # committed by the loop) before the producer flushes and the clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        http = await stack.enter_async_context(
            open_session(settings.clearml_timeout_s, settings.concurrency)
        )
        producer = await start_producer(stack, settings, linger_ms=settings.linger_ms)
        consumer = await start_consumer(stack, settings, ENQUEUE_REQUESTS, settings.group)
        clearml = ClearML(ClearMLClient.from_settings(http, settings))
        handler = EnqueueHandler(
            clearml, EnqueueLogStore(database(mongo, settings)), producer, settings.topic_prefix
        )
        retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
        loop = ConsumerLoop(
            service=SERVICE,
            settings=settings,
            spec=ENQUEUE_REQUESTS,
            consumer=consumer,
            producer=producer,
            handler=handler,
            on_failure=handler.on_failure,
            config=LoopConfig(concurrency=settings.concurrency, retry=retry),
        )
        await loop.run(stop)
