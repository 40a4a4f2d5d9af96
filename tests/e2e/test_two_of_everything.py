"""Two copies of every service that scales, as real processes, and one copy of each killed with
SIGKILL in the middle of a mixed burst: every enqueue the ingests accepted makes exactly one
clone, every on-demand caller gets the model's answer or a 5xx, before its deadline, every
notification is told once, and every request's log is folded once: an on-demand call whose
router copy was killed with it in hand included (its one raw log and one count)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from clearml_sim.testing import SimServer
from mlbus.stack import SINGLE, WORKERS, Fleet
from schemas.codec import decode
from schemas.collections import ONDEMAND_LOGS, VIEW_HOURLY
from schemas.topics import NOTIFICATIONS
from schemas.views import VIEW_OF
from services.enqueuer.handlers import REQUEST_TAG
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.copies import fleet_env, running_fleet, start
from tests.e2e.test_ondemand_path import FEATURES, register
from tests.fixtures import UNLIMITED
from tests.integration.test_ingest_access import bearer, map_parking
from tests.support import Issuer, eventually

SCALED = ("ingest", *(name for name, _, _ in WORKERS if name not in SINGLE))
ROUNDS = 30  # each: one enqueue and one on-demand call, alternating between the two ingests
TIMEOUT_S = 5.0  # the endpoint's timeout: an on-demand caller's deadline
GRACE_S = 5.0  # the HTTP leg and a loaded machine


async def whole_topic(bus: Bus, name: str, timeout_s: float = 30) -> list[bytes]:
    """Every record on a topic up to its end now (however many there are)."""
    consumer = AIOKafkaConsumer(
        name, bootstrap_servers=bus.kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[bytes] = []
    ends: dict[TopicPartition, int] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(r.value for r in records if r.value is not None)
                parts = consumer.assignment()
                if parts and not ends:
                    ends = await consumer.end_offsets(list(parts))
                if ends and not [tp for tp in ends if await consumer.position(tp) < ends[tp]]:
                    return out
    finally:
        await consumer.stop()


async def folded(mongo_db: Any, path: str) -> tuple[set[str], int, int]:
    """The requests of `path` the logger has a view of, how many of them are decided (the fact
    that moves `count`: an enqueue queued or failed, any on-demand outcome; an enqueue whose
    ingest was killed can rest at "accepted"), and the hourly counters' total count."""
    views = {d["_id"]: d.get("status") async for d in mongo_db[VIEW_OF[path]].find({})}
    decided = sum(1 for st in views.values() if path == "ondemand" or st != "accepted")
    hourly = [d async for d in mongo_db[VIEW_HOURLY].find({})]
    count = sum(int(d.get("count", 0)) for d in hourly if str(d["_id"]).startswith(f"{path}|"))
    return set(views), decided, count


def ingest_url(fleet: Fleet, index: int) -> str:
    proc = fleet.copies["ingest"][index]
    return f"http://127.0.0.1:{next(iter(proc.env.values()))}"


async def test_two_of_everything_with_one_of_each_killed_mid_burst(
    bus: Bus, sim: SimServer, issuer: Issuer, node: RunningNode, mongo_db: Any
) -> None:
    env = fleet_env(bus, sim, issuer) | {
        "MLBUS_INGEST_RATE_QUOTAS": json.dumps(UNLIMITED["rate_quotas"]),
        "MLBUS_INGEST_TASK_QUOTAS": json.dumps(UNLIMITED["task_quotas"]),
    }
    async with running_fleet(env) as fleet:
        for service in SCALED:
            await start(fleet, service, 2)
        urls = [ingest_url(fleet, 0), ingest_url(fleet, 1)]
        async with (
            httpx.AsyncClient(base_url=urls[0], timeout=30) as first,
            httpx.AsyncClient(base_url=urls[1], timeout=30) as second,
        ):
            task_id = await map_parking(second, issuer)
            machine_id = await register(second, issuer, node, timeout_s=TIMEOUT_S)
            alice = bearer(issuer.token())
            enqueue = {"task_id": task_id, "input": {"lr": 0.1}}
            ondemand = {"machine_id": machine_id, "endpoint": "parking_free_slots"}
            node.set_faults(latency_ms=30)

            async def call(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
                started = time.monotonic()
                try:
                    answer = await client.post(path, json=body, headers=alice)
                except httpx.HTTPError as exc:  # the ingest it asked was killed
                    return path, type(exc).__name__, None, time.monotonic() - started
                rid = answer.json().get("request_id")
                return path, answer.status_code, rid, time.monotonic() - started

            calls = []
            for i in range(ROUNDS):
                client = (first, second)[i % 2]
                calls.append(asyncio.create_task(call(client, "/v1/enqueue", enqueue)))
                calls.append(
                    asyncio.create_task(
                        call(client, "/v1/ondemand", {**ondemand, "input": FEATURES})
                    )
                )
                if i == ROUNDS // 2:  # mid-burst: one copy of each service dies
                    for service in SCALED:
                        fleet.kill(service, 0)
                await asyncio.sleep(0.1)
            results = await asyncio.gather(*calls)
            accepted = [
                rid for p, status, rid, _ in results if p == "/v1/enqueue" and status == 202
            ]

            async def all_cloned() -> bool:
                tags = [t for task in list(sim.state.tasks.values()) for t in task.get("tags", [])]
                return all(REQUEST_TAG + rid in tags for rid in accepted)

            # the surviving enqueuer carries what the killed one had not committed
            await eventually(all_cloned, timeout_s=90, what="a clone for every accepted enqueue")
            await asyncio.sleep(2)  # a second clone would be made right after the first

            # Every log folded once: each answered request has its view, and the counters
            # count each request once (their total equals the requests decided; a fact folded
            # twice moves `count` twice, and no later fact can bring the two level again).
            answered = {
                path: {rid for p, status, rid, _ in results if p == f"/v1/{path}" and rid}
                for path in ("enqueue", "ondemand")
            }

            last: dict[str, Any] = {}

            async def logs_level() -> bool:
                level = True
                for path, rids in answered.items():
                    views, decided, count = await folded(mongo_db, path)
                    missing = sorted(rids - views)
                    last[path] = {"missing": missing, "views": len(views), "decided": decided}
                    last[path]["count"] = count
                    if path == "ondemand":  # the call's raw log too, whoever held it died
                        raw = {d["_id"] async for d in mongo_db[ONDEMAND_LOGS].find({}, {"_id": 1})}
                        last[path]["no_raw_log"] = sorted(rids - raw)
                        missing += last[path]["no_raw_log"]
                    if missing:  # what their callers were answered, for the diagnosis
                        by_rid = {rid: (status, round(t, 2)) for _, status, rid, t in results}
                        last[path]["answers"] = {rid: by_rid.get(rid) for rid in set(missing)}
                    if missing or count != decided:
                        level = False
                return level

            try:
                await eventually(logs_level, timeout_s=60, what="every request folded once")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {last}") from None
            await asyncio.sleep(1)  # a fact folded twice would be counted again right after
            level = {path: await folded(mongo_db, path) for path in answered}

    enqueues = [r for r in results if r[0] == "/v1/enqueue"]
    ondemands = [r for r in results if r[0] == "/v1/ondemand"]
    print(Counter((p, s) for p, s, _, _ in results))  # noqa: T201 - the burst's account
    assert accepted, enqueues
    print("folded:", last)  # noqa: T201 - the logs' account
    for path, (_, decided, count) in level.items():
        assert count == decided, (path, count, decided)  # no request counted twice
    assert answered["enqueue"] <= level["enqueue"][0]  # every answered enqueue folded
    # every on-demand call answered (200 or a 5xx of ingest's) has its one raw log (by `_id`)
    # and is folded: whichever router copy held it, killed or not
    assert answered["ondemand"] <= level["ondemand"][0]
    assert last["ondemand"]["no_raw_log"] == [], last["ondemand"]

    # Every notification told once: no id twice on the topic (what webhooks and the live
    # stream are fed from), and no alert or event told twice under two ids.
    told = [
        decode(NOTIFICATIONS, raw).payload
        for raw in await whole_topic(bus, NOTIFICATIONS.named(bus.topic_prefix))
    ]
    print(Counter((n.kind, n.status) for n in told))  # noqa: T201 - what was told
    assert [i for i, n in Counter(n.id for n in told).items() if n > 1] == []
    keys = Counter((n.kind, n.status, n.fingerprint or n.id, n.first_seen) for n in told)
    assert [k for k, n in keys.items() if n > 1] == []
    stored = [d async for d in mongo_db["notifications"].find({})]
    assert {d["_id"] for d in stored} <= {n.id for n in told}

    # Every on-demand caller answered (the model's 200 or a 5xx), before its deadline; a call
    # to the killed ingest itself fails at the connection, which a client sees as such.
    to_survivor = [r for r in ondemands if not isinstance(r[1], str)]
    assert all(s == 200 or s >= 500 for _, s, _, _ in to_survivor), to_survivor
    assert [r for r in to_survivor if r[3] >= TIMEOUT_S + GRACE_S] == []

    # Every accepted enqueue makes exactly one clone.
    tags = Counter(t for task in list(sim.state.tasks.values()) for t in task.get("tags", []))
    assert {rid: tags[REQUEST_TAG + rid] for rid in accepted if tags[REQUEST_TAG + rid] != 1} == {}
