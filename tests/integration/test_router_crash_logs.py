"""Two inference routers as real processes, one SIGKILLed in a stream of calls: every call ends
with exactly one raw log (`ondemand_logs`) and is counted once in the read models.

The routers commit their offsets as often as they can (`commit_interval_s=0`), so that a request
finished just before the kill is committed at once: one committed before its log reached the
broker would have no log for ever. The killed router's calls in hand, and those that reach its
partitions until the group moves them, are the survivor's once the killed one's session ends
(10 s): past their deadline by then, each is logged `expired`, once. Before the fix (librdkafka's
45 s session), 40 of 164 calls had no log 30 s after the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from runtime.kafka import ensure_topics
from schemas.base import utcnow
from schemas.codec import encode, envelope_for
from schemas.collections import ONDEMAND_LOGS, VIEW_HOURLY, VIEW_ONDEMAND
from schemas.inference import InferenceRequested
from schemas.topics import INFERENCE_REQUESTS, REGISTRY
from services.inference_router.settings import InferenceRouterSettings
from services.logger.app import run as run_logger
from serving_node.testing import run_node
from tests.conftest import Bus
from tests.fixtures import running_worker
from tests.integration.test_inference_router import ENDPOINT, GOOD, MACHINE, _map
from tests.integration.test_logger import logger_settings
from tests.processes import Process, running_process
from tests.support import eventually

CALLS = 160
RATE = 40.0  # calls a second: the kill lands with calls in flight on both routers
DEADLINE_S = 3.0
LOGGED_WITHIN_S = 30.0
HANDLED = re.compile(r'^mlbus_messages_handled_total\{service="inference_router".*\} (\S+)$', re.M)


async def handled(process: Process) -> float:
    """Messages the router process has handled (its /metrics)."""
    url = process.readyz.rsplit("/", 1)[0] + "/metrics"
    async with httpx.AsyncClient(timeout=2.0) as client:
        with contextlib.suppress(httpx.HTTPError):
            return sum(float(n) for n in HANDLED.findall((await client.get(url)).text))
    return 0.0


@contextlib.asynccontextmanager
async def requests_to(bus: Bus, settings: InferenceRouterSettings) -> AsyncIterator[Any]:
    """A function that sends one call (its request id back), to a reply topic nobody reads."""
    reply_to = f"{bus.topic_prefix}mlbus.replies.crash"
    await ensure_topics(settings, REGISTRY)
    admin = AIOKafkaAdminClient(bootstrap_servers=bus.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(reply_to, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, linger_ms=0)
    await producer.start()

    async def send() -> str:
        payload = InferenceRequested(
            machine_id=MACHINE,
            endpoint=ENDPOINT,
            input=GOOD,
            reply_to=reply_to,
            deadline=utcnow() + timedelta(seconds=DEADLINE_S),
        )
        env = envelope_for(INFERENCE_REQUESTS, payload, user="alice")
        topic = INFERENCE_REQUESTS.named(bus.topic_prefix)
        await producer.send_and_wait(topic, encode(env), key=env.id.encode())
        return env.id

    try:
        yield send
    finally:
        await producer.stop()


async def logged(db: Any, rids: set[str]) -> dict[str, Any]:
    """Where the calls stand: raw logs and views missing, views in all, the counters' total."""
    raw = {d["_id"] async for d in db[ONDEMAND_LOGS].find({}, {"_id": 1})}
    views = {d["_id"] async for d in db[VIEW_ONDEMAND].find({}, {"_id": 1})}
    hourly = [d async for d in db[VIEW_HOURLY].find({})]
    count = sum(int(d.get("count", 0)) for d in hourly if str(d["_id"]).startswith("ondemand|"))
    return {
        "no_raw_log": sorted(rids - raw),
        "no_view": sorted(rids - views),
        "views": len(views),
        "count": count,
    }


async def test_a_router_killed_with_calls_in_hand_leaves_every_call_one_log_counted_once(
    bus: Bus, mongo_db: Any
) -> None:
    settings = InferenceRouterSettings(
        **bus.settings(),
        instance="router-a",
        group=f"{bus.topic_prefix}router",
        health_interval_s=0,
        commit_interval_s=0,
    )
    with run_node() as node:
        node.set_faults(latency_ms=100)  # calls in flight at the kill
        await _map(mongo_db, [node], timeout_s=DEADLINE_S)
        async with (
            requests_to(bus, settings) as send,
            running_worker(run_logger, logger_settings(bus)),
            running_process("inference_router", settings) as doomed,
            running_process(
                "inference_router", settings.model_copy(update={"instance": "router-b"})
            ) as survivor,
        ):
            sent: set[str] = set()

            async def both_serve() -> bool:  # each holds partitions of the requests topic
                sent.add(await send())
                return min(await handled(doomed), await handled(survivor)) > 0

            await eventually(both_serve, timeout_s=60, what="both routers handling calls")
            for i in range(CALLS):
                sent.add(await send())
                if i == CALLS // 2:
                    doomed.kill()  # SIGKILL: nothing more is committed, flushed or written
                await asyncio.sleep(1 / RATE)
            last: dict[str, Any] = {}

            async def every_call_logged_once() -> bool:
                last.update(await logged(mongo_db, sent))
                level = last["count"] == last["views"] == len(sent)
                return level and not last["no_raw_log"] and not last["no_view"]

            try:
                # the killed router's session (10 s), a rebalance, the logger's fold: within
                # LOGGED_WITHIN_S of the last call (librdkafka's default session, 45 s, is not)
                await eventually(
                    every_call_logged_once, timeout_s=LOGGED_WITHIN_S, what="every call logged"
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {last}") from None
            await asyncio.sleep(2)  # a call logged twice would be counted again by now
            after = await logged(mongo_db, sent)
            statuses = [d["status"] async for d in mongo_db[ONDEMAND_LOGS].find({})]
    print(f"{len(sent)} calls:", {s: statuses.count(s) for s in set(statuses)})  # noqa: T201
    assert after["count"] == after["views"] == len(sent), after
    assert set(statuses) <= {"ok", "expired"}, statuses
