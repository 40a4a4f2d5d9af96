"""The inference router against real Kafka and FerretDB, with real serving nodes in threads.

A request delivered twice reaches the model once; the second delivery is answered from the
first one's outcome, so the reply topic carries two identical replies (same envelope id), and
the waiting ingest takes the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo.asynchronous.database import AsyncDatabase

from runtime.kafka import ensure_topics
from schemas.base import Envelope, utcnow
from schemas.codec import decode, encode, envelope_for
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.logs import RequestLogged
from schemas.notifications import Notification
from schemas.topics import INFERENCE_REQUESTS, LOGS, NOTIFICATIONS, REGISTRY, REPLY_TEMPLATE
from services.inference_router.app import run as run_router
from services.inference_router.settings import InferenceRouterSettings
from services.logger.handlers import raw_log
from serving_node.testing import RunningNode, run_node
from tests.conftest import Bus
from tests.fixtures import Worker
from tests.support import eventually

MACHINE = "m-7c1d"
ENDPOINT = "parking_free_slots"
GOOD = {
    "capacity": 200,
    "hour": 9,
    "weekday": 2,
    "temperature_c": 18.5,
    "rain_mm": 0.0,
    "event_nearby": False,
}


@dataclass
class Harness:
    """A running router, the nodes behind it, and the test's ends of the topics."""

    bus: Bus
    nodes: list[RunningNode]
    producer: AIOKafkaProducer
    replies: AIOKafkaConsumer
    notices: AIOKafkaConsumer
    reply_to: str
    seen: dict[str, list[InferenceReplied]] = field(default_factory=dict)

    def request(self, deadline_s: float = 10.0, **changes: Any) -> Envelope[InferenceRequested]:
        fields: dict[str, Any] = {
            "machine_id": MACHINE,
            "endpoint": ENDPOINT,
            "input": GOOD,
            "reply_to": self.reply_to,
            "deadline": utcnow() + timedelta(seconds=deadline_s),
            **changes,
        }
        return envelope_for(INFERENCE_REQUESTS, InferenceRequested(**fields), user="alice")

    async def send(self, env: Envelope[InferenceRequested]) -> None:
        topic = INFERENCE_REQUESTS.named(self.bus.topic_prefix)
        await self.producer.send_and_wait(topic, encode(env), key=env.id.encode())

    async def replies_to(self, rid: str, count: int = 1, timeout_s: float = 20) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while len(self.seen.get(rid, [])) < count:
            assert time.monotonic() < deadline, f"no reply to {rid} within {timeout_s}s"
            batch = await self.replies.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    env = decode(REPLY_TEMPLATE, record.value)
                    self.seen.setdefault(env.id, []).append(env.payload)
        return self.seen[rid]

    async def ask(self, env: Envelope[InferenceRequested]) -> InferenceReplied:
        await self.send(env)
        replies = await self.replies_to(env.id)
        return cast("InferenceReplied", replies[0])

    async def notifications(self) -> list[Notification]:
        batch = await self.notices.getmany(timeout_ms=200)
        return [decode(NOTIFICATIONS, r.value).payload for rs in batch.values() for r in rs]


async def _map(db: AsyncDatabase[Any], nodes: list[RunningNode], timeout_s: float) -> None:
    await db["serving_machines"].insert_one(
        {
            "_id": MACHINE,
            "serving_task_id": "serving-task-real-id",
            "base_urls": [n.serve_url for n in nodes],
            "description": "test machine",
            "created_at": utcnow(),
        }
    )
    await db["endpoint_mappings"].insert_one(
        {
            "_id": f"{MACHINE}/{ENDPOINT}",
            "machine_id": MACHINE,
            "endpoint": ENDPOINT,
            "timeout_s": timeout_s,
            "created_at": utcnow(),
        }
    )


async def _consumer(bus: Bus, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bus.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    return consumer


@contextlib.asynccontextmanager
async def routed(
    bus: Bus, mongo_db: object, replicas: int = 1, timeout_s: float = 5.0, **overrides: Any
) -> AsyncIterator[Harness]:
    db = cast("AsyncDatabase[Any]", mongo_db)
    settings = InferenceRouterSettings(
        **{
            **bus.settings(),
            "instance": "router-test",
            "group": f"{bus.topic_prefix}router",
            "health_interval_s": 0,
            **overrides,
        }
    )
    reply_to = f"{bus.topic_prefix}mlbus.replies.test"
    await ensure_topics(settings, REGISTRY)
    admin = AIOKafkaAdminClient(bootstrap_servers=bus.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(reply_to, 1, 1)])
    finally:
        await admin.close()
    async with contextlib.AsyncExitStack() as stack:
        nodes = [stack.enter_context(run_node()) for _ in range(replicas)]
        await _map(db, nodes, timeout_s)
        producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, linger_ms=0)
        await producer.start()
        stack.push_async_callback(producer.stop)
        replies = await _consumer(bus, reply_to)
        stack.push_async_callback(replies.stop)
        notices = await _consumer(bus, NOTIFICATIONS.named(bus.topic_prefix))
        stack.push_async_callback(notices.stop)
        stop = asyncio.Event()
        worker = Worker(stop, asyncio.create_task(run_router(settings, stop)))
        try:
            yield Harness(bus, nodes, producer, replies, notices, reply_to)
        finally:
            await worker.halt()


async def test_parking_model_answers_and_the_call_is_logged(bus: Bus, mongo_db: object) -> None:
    async with routed(bus, mongo_db) as h:
        env = h.request()
        reply = await h.ask(env)
        assert reply.ok, reply
        assert reply.http_status == 200
        assert isinstance(reply.output, dict)
        assert reply.output["capacity"] == 200
        free_slots = reply.output["free_slots"]
        assert isinstance(free_slots, int)
        assert 0 <= free_slots <= 200
        assert h.nodes[0].request_count(env.id) == 1

        # the call's log: on the logs topic, its raw log inside (the logger writes it)
        logs = await _consumer(h.bus, LOGS.named(h.bus.topic_prefix))
        try:

            async def logged() -> RequestLogged | None:
                batch = await logs.getmany(timeout_ms=200)
                found = [decode(LOGS, r.value).payload for rs in batch.values() for r in rs]
                return next((e for e in found if e.request_id == env.id), None)

            entry = await eventually(logged, what="the call's log published")
        finally:
            await logs.stop()
        doc = raw_log(entry)
        assert doc is not None
        assert doc["status"] == "ok"
        assert doc["http_status"] == 200
        assert (doc["user"], doc["machine_id"], doc["endpoint"]) == ("alice", MACHINE, ENDPOINT)
        assert doc["serving_task_id"] == "serving-task-real-id"
        assert doc["replica_url"] == h.nodes[0].serve_url
        latency = doc["latency_ms"]
        assert latency["bus"] >= 0
        assert latency["model"] > 0
        assert latency["total"] >= latency["model"]


async def test_bad_feature_is_the_models_422_with_its_detail(bus: Bus, mongo_db: object) -> None:
    async with routed(bus, mongo_db) as h:
        reply = await h.ask(h.request(input={**GOOD, "hour": 99}))
        assert (reply.ok, reply.http_status, reply.error_code) == (False, 422, "model_rejected")
        assert reply.message is not None
        assert "hour" in reply.message


async def test_node_down_is_502(bus: Bus, mongo_db: object) -> None:
    async with routed(bus, mongo_db) as h:
        h.nodes[0].stop()
        reply = await h.ask(h.request())
        assert (reply.http_status, reply.error_code) == (502, "model_failed")


async def test_hanging_node_is_504_within_the_endpoint_timeout(bus: Bus, mongo_db: object) -> None:
    async with routed(bus, mongo_db, timeout_s=1.0) as h:
        await h.ask(h.request())  # the router is up and the connection pool warm
        h.nodes[0].set_faults(hang=True)
        env = h.request()
        started = time.monotonic()
        reply = await h.ask(env)
        elapsed = time.monotonic() - started
        h.nodes[0].clear_faults()
        assert (reply.http_status, reply.error_code) == (504, "model_timeout")
        # It waited the endpoint's 1 s (not less), and the node, which hangs for an hour, did
        # not end it: the reply came within `ask`'s own deadline.
        assert elapsed >= 0.9


async def test_expired_request_is_504_and_never_reaches_the_model(
    bus: Bus, mongo_db: object
) -> None:
    async with routed(bus, mongo_db) as h:
        env = h.request(deadline_s=-1)
        reply = await h.ask(env)
        assert (reply.http_status, reply.error_code) == (504, "expired")
        assert h.nodes[0].request_count(env.id) == 0


async def test_a_request_delivered_twice_reaches_the_model_once(bus: Bus, mongo_db: object) -> None:
    async with routed(bus, mongo_db) as h:
        env = h.request()
        await h.send(env)
        await h.send(env)
        first, second = await h.replies_to(env.id, count=2)
        assert first == second
        assert first.ok
        assert h.nodes[0].request_count(env.id) == 1


async def test_a_dead_replica_is_routed_around_and_taken_out(bus: Bus, mongo_db: object) -> None:
    async with routed(bus, mongo_db, replicas=2, breaker_failures=2, breaker_cooldown_s=60) as h:
        alive, dead = h.nodes
        await h.ask(h.request())
        dead.stop()
        replies = [await h.ask(h.request()) for _ in range(6)]
        assert all(r.ok for r in replies), replies
        dead.start()  # back, but its breaker is open for the cool-down: no traffic for it
        before = dead.stats.total_requests
        replies = [await h.ask(h.request()) for _ in range(6)]
        assert all(r.ok for r in replies)
        assert dead.stats.total_requests == before
        assert alive.stats.total_requests >= 12

        async def down() -> Notification | None:
            found = [n for n in await h.notifications() if n.kind == "replica_down"]
            return found[0] if found else None

        notice = await eventually(down, what="replica_down notification")
        assert notice.subject == f"{MACHINE}/replica-1"
        assert notice.severity == "warning"
        assert dead.url not in notice.message
        assert "127.0.0.1" not in notice.message


async def test_a_late_redelivery_answered_by_another_router_is_not_sent_again(
    bus: Bus, mongo_db: object
) -> None:
    async with routed(bus, mongo_db) as h:
        waited = {"created_at": utcnow() - timedelta(seconds=5)}  # redelivered after a rebalance
        answered, unanswered = (h.request().model_copy(update=waited) for _ in range(2))
        logs = cast("AsyncDatabase[Any]", mongo_db)["ondemand_logs"]
        await logs.insert_one({"_id": answered.id, "status": "ok"})  # the other router's log
        await h.send(answered)
        reply = await h.ask(unanswered)  # sent after it, through the same router
        assert reply.ok
        assert h.nodes[0].request_count(unanswered.id) == 1
        await h.ask(h.request())  # one more round trip: the first delivery had every chance
        assert h.nodes[0].request_count(answered.id) == 0
        assert answered.id not in h.seen
