"""Wiring of the HTTP bridge: resources open in the lifespan, routes, error shape, probes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from runtime.http import EdgeMiddleware, install_error_handlers, install_probes
from runtime.kafka import ensure_topics, start_producer
from runtime.lifecycle import settle_heap
from runtime.mongo import database, mongo_on, ping
from runtime.rdkafka import RdProducer
from runtime.webassets import install_api_docs
from schemas.base import utcnow
from schemas.topics import REGISTRY
from services.ingest import (
    admin,
    artifacts,
    audit,
    catalog,
    dashboard,
    handlers,
    logs,
    me,
    notifications,
    ondemand,
    resources,
)
from services.ingest.access import NetworkGate, RefusalCounter
from services.ingest.auth import JwksVerifier
from services.ingest.bus import Publisher
from services.ingest.deps import Ingest
from services.ingest.guard import guard_of, policy_from
from services.ingest.idempotency import IdempotencyKeys
from services.ingest.logviews import LogReader
from services.ingest.mappings import MappingCache
from services.ingest.refusals import refusal_reporter
from services.ingest.replies import ReplyWaiter
from services.ingest.resources import ResourceReadModel
from services.ingest.settings import IngestSettings
from services.ingest.store import ENDPOINTS, MACHINES, TASKS, IngestStore
from services.ingest.stream import NotificationHub

SERVICE = "ingest"


def create_app(settings: IngestSettings) -> FastAPI:
    """The ASGI app for one ingest process."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opened in dependency order and closed in reverse: the producer flushes before the
        # Mongo client closes, so a request in flight either gets its ack or its 503.
        async with contextlib.AsyncExitStack() as stack:
            mongo = mongo_on(stack, settings)
            http = await stack.enter_async_context(httpx.AsyncClient())
            await ensure_topics(settings, REGISTRY)
            # Two producers: enqueue batches a little (linger) under load; inference never waits.
            enqueue_producer = await start_producer(
                stack, settings, linger_ms=settings.enqueue_linger_ms
            )
            # the on-demand path: librdkafka, a fraction of aiokafka's CPU per message
            inference_producer = RdProducer(settings)
            await inference_producer.start()
            stack.push_async_callback(inference_producer.stop)
            replies = ReplyWaiter(settings)
            await replies.start()
            stack.push_async_callback(replies.stop)
            hub = NotificationHub(settings, settings.stream_buffer, settings.stream_queue)
            await hub.start()
            stack.push_async_callback(hub.stop)
            store = IngestStore(database(mongo, settings))
            caches = (
                MappingCache(store, TASKS, settings.mapping_refresh_s),
                MappingCache(store, MACHINES, settings.mapping_refresh_s),
                MappingCache(store, ENDPOINTS, settings.mapping_refresh_s),
            )
            for cache in caches:
                await cache.load()
                refresher = asyncio.create_task(cache.refresh_forever())
                stack.callback(refresher.cancel)
            verifier = JwksVerifier.from_settings(settings, http)
            app.state.ingest = Ingest(
                settings,
                store,
                *caches,
                enqueue_bus=Publisher(
                    enqueue_producer, settings.topic_prefix, settings.publish_timeout_s
                ),
                inference_bus=Publisher(
                    inference_producer, settings.topic_prefix, settings.publish_timeout_s
                ),
                replies=replies,
                verifier=verifier,
                notifications=hub,
                guard=await guard_of(
                    settings, database(mongo, settings), store.enqueue_status, stack
                ),
                idempotency=IdempotencyKeys(database(mongo, settings), settings.idempotency_ttl_s),
            )
            app.state.producer, app.state.mongo = enqueue_producer, mongo
            app.state.log_reader = reader = LogReader(database(mongo, settings))
            stack.callback(reader.close)
            warming = asyncio.create_task(reader.keep_warm(utcnow()))  # the dashboard's days
            stack.callback(warming.cancel)
            app.state.resources = ResourceReadModel(
                database(mongo, settings), settings.resources_cache_s
            )
            app.openapi()  # built now, not on the first request that needs it
            settle_heap()
            yield

    app = FastAPI(
        title="mlbus",
        version="0.1.0",
        description="MLOps front door of the GPU cluster: enqueue training, call models, follow "
        "requests. Errors are always {code, message, request_id}.",
        lifespan=lifespan,
        # Never answer a missing or extra slash with a redirect: Starlette builds its Location
        # from the Host header (an attacker's), and a 307 makes the client send the body, token
        # included, again. The compatibility paths answer both spellings themselves.
        redirect_slashes=False,
        docs_url=None,  # served from the project's own files below (offline clusters)
        redoc_url=None,
    )
    install_error_handlers(app)
    # Routes are matched in order, each a regex: the on-demand path, the one that waits on the
    # caller's latency, is tried first.
    for module in (ondemand, handlers, admin, notifications, resources, artifacts, catalog):
        app.include_router(module.router)
    for router in (logs.admin_router, logs.user_router, dashboard.router, audit.router):
        app.include_router(router)
    app.include_router(me.router)
    install_api_docs(app)  # last: the API's routes are tried first

    async def kafka_ready() -> bool:
        try:
            await app.state.producer.client.fetch_all_metadata()
        except (KafkaError, AttributeError, OSError):
            return False
        return True

    async def mongo_ready() -> bool:
        return hasattr(app.state, "mongo") and await ping(app.state.mongo)

    async def replies_ready() -> bool:
        return hasattr(app.state, "ingest") and app.state.ingest.replies.running()

    async def notifications_ready() -> bool:
        return hasattr(app.state, "ingest") and app.state.ingest.notifications.running()

    async def issuer_ready() -> bool:
        return hasattr(app.state, "ingest") and await app.state.ingest.verifier.ready()

    install_probes(
        app,
        {
            "kafka": kafka_ready,
            "mongodb": mongo_ready,
            "issuer": issuer_ready,
            "replies": replies_ready,
            "notifications": notifications_ready,
        },
    )
    # Inside EdgeMiddleware (added after it, so it runs after it): a refused request still gets
    # its request id and counts in the HTTP metrics.
    policy = policy_from(settings)  # a bad CIDR fails here, at start-up, with its name
    app.add_middleware(
        NetworkGate,
        policy=lambda: policy,
        on_refused=refusal_reporter(
            app,
            RefusalCounter(settings.refusal_alert_count, settings.refusal_alert_window_s),
            settings,
        ),
    )
    app.add_middleware(EdgeMiddleware, service=SERVICE, max_body=settings.max_body_bytes)
    return app
