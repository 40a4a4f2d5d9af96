"""Wiring of the inference router: Kafka, MongoDB, the pooled HTTP client, the route cache
with its reload and health loops, and the consumer loop."""

from __future__ import annotations

import asyncio
import contextlib

from runtime import metrics
from runtime.consumer import LoopConfig
from runtime.kafka import ensure_topics, start_producer
from runtime.mongo import database, mongo_on
from runtime.pipeline import PipelinedConsumerLoop
from runtime.rdkafka import RdGroupConsumer, RdProducer
from runtime.retry import RetryPolicy
from schemas.topics import INFERENCE_REQUESTS, REGISTRY
from services.inference_router.handlers import InferenceHandler
from services.inference_router.model import ModelClient
from services.inference_router.notices import Notifier
from services.inference_router.routes import RouteTable
from services.inference_router.settings import InferenceRouterSettings
from services.inference_router.store import MappingStore, OnDemandLogs
from services.inference_router.transport import open_transport

SERVICE = "inference_router"


async def run(settings: InferenceRouterSettings, stop: asyncio.Event) -> None:
    """Consume inference requests until `stop` is set."""
    metrics.start_metrics(settings.metrics_port, settings.metrics_host)
    await ensure_topics(settings, REGISTRY)
    # Close order is the reverse of opening: the background loops stop first, then the consumer
    # (its last batch already answered and committed by the loop), then notifications still in
    # flight, then the producer flushes and the HTTP and Mongo clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        http = await stack.enter_async_context(open_transport(settings))
        # notifications and dead letters
        producer = await start_producer(stack, settings, linger_ms=0)
        # replies, the latency path: librdkafka, a fraction of aiokafka's CPU per message; each
        # call's log goes with its reply, on the same producer (see handlers.py)
        replies = RdProducer(settings)
        await replies.start()
        stack.push_async_callback(replies.stop)
        notifier = Notifier(producer, settings.topic_prefix, settings.breaker_cooldown_s)
        stack.push_async_callback(notifier.drain)
        # the request leg of the latency path: librdkafka too, behind aiokafka's consumer API
        consumer = RdGroupConsumer(
            settings, INFERENCE_REQUESTS.named(settings.topic_prefix), settings.group
        )
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        db = database(mongo, settings)
        routes = RouteTable(MappingStore(db), settings, notifier.breaker_changed)
        model = ModelClient(http, settings.connect_timeout_s)
        logs = OnDemandLogs(db)
        handler = InferenceHandler(
            routes,
            model,
            logs,
            replies,
            dedupe_grace_s=settings.dedupe_grace_s,
            replay_check_after_s=settings.replay_check_after_s,
            topic_prefix=settings.topic_prefix,
        )
        background = [
            asyncio.create_task(routes.keep_fresh(stop)),
            asyncio.create_task(routes.probe_health(model, stop)),
        ]
        stack.push_async_callback(_finish, background)
        retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
        # Pipelined: a model that hangs until its timeout must not stall the requests behind it.
        loop = PipelinedConsumerLoop(
            service=SERVICE,
            settings=settings,
            spec=INFERENCE_REQUESTS,
            consumer=consumer,
            producer=producer,
            handler=handler,
            on_failure=handler.on_failure,
            config=LoopConfig(
                concurrency=settings.concurrency,
                retry=retry,
                poll_timeout_ms=settings.poll_timeout_ms,
                commit_interval_s=settings.commit_interval_s,
            ),
        )
        await loop.run(stop)


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
