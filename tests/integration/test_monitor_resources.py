"""Resource state against the real servers: GPU heartbeats on real Kafka + the ClearML simulator's
demo agents → monitor → the compacted state topics and the `resources` / `queues` read models in
FerretDB → `GET /v1/resources` and `queue_name: "auto"` in ingest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from clearml_sim.demo import DEMO_QUEUE_IDS
from clearml_sim.testing import SimServer
from runtime.kafka import ensure_topics, partitions_of
from runtime.settings import BusSettings
from schemas.codec import decode, encode, envelope_for
from schemas.heartbeat import AgentHeartbeat, GpuReading
from schemas.topics import HEARTBEATS, QUEUE_STATE, REGISTRY, RESOURCE_STATE, TopicSpec
from services.monitor.app import run as run_monitor
from services.monitor.settings import MonitorSettings
from tests.conftest import Bus
from tests.fixtures import Worker, running_worker
from tests.fixtures import monitor_settings as fixture_monitor_settings
from tests.support import Issuer, eventually

BEAT_S = 0.3  # heartbeat interval: a machine is offline after 3 missed ones (0.9 s)


def gpu(index: int, util: float) -> GpuReading:
    used = 30000.0 if util > 50 else 10.0
    return GpuReading(
        index=index,
        uuid=f"GPU-{index}",
        name="NVIDIA A100-SXM4-40GB",
        utilization_pct=util,
        memory_used_mb=used,
        memory_total_mb=40960.0,
    )


class Agents:
    """Simulated GPU agents publishing heartbeats until told to stop, machine by machine."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.loads: dict[str, float] = {}
        self._producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await ensure_topics(BusSettings(**self._bus.settings()), REGISTRY)
        await self._producer.start()
        self._task = asyncio.create_task(self._beat())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._producer.stop()

    async def _beat(self) -> None:
        topic = HEARTBEATS.named(self._bus.topic_prefix)
        while True:
            for machine, util in list(self.loads.items()):
                hb = AgentHeartbeat(
                    machine_id=machine, interval_s=BEAT_S, gpus=[gpu(0, util), gpu(1, util)]
                )
                await self._producer.send(
                    topic, encode(envelope_for(HEARTBEATS, hb)), key=machine.encode()
                )
            await asyncio.sleep(BEAT_S)


@pytest.fixture
async def agents(bus: Bus) -> AsyncIterator[Agents]:
    """The demo's GPU boxes: the A100 boxes busy, the T4 box idle; plus a box with no ClearML
    worker, which is online only while its heartbeats come."""
    running = Agents(bus)
    running.loads.update({"gpu-box-01": 95.0, "gpu-box-02": 97.0, "t4-box-01": 0.0})
    running.loads["edge-box-07"] = 0.0
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def monitor_settings(bus: Bus, sim: SimServer) -> MonitorSettings:
    return fixture_monitor_settings(bus, sim, resource_poll_s=0.2)


@pytest.fixture
async def monitor(bus: Bus, sim: SimServer, agents: Agents) -> AsyncIterator[Worker]:
    async with running_worker(run_monitor, monitor_settings(bus, sim)) as worker:
        yield worker


async def read_topic(bus: Bus, spec: TopicSpec) -> list[tuple[str, Any]]:
    """(key, payload) of every message on a topic so far."""
    topic = spec.named(bus.topic_prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=bus.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in await partitions_of(bus.kafka_bootstrap, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[str, Any]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend((r.key.decode(), decode(spec, r.value).payload) for r in records)
        return out
    finally:
        await consumer.stop()


async def stored(db: Any, collection: str, key: str, **expected: Any) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await db[collection].find_one({"_id": key})
    if doc is None or any(doc.get(k) != v for k, v in expected.items()):
        return None
    return doc


async def test_monitor_publishes_and_stores_states_and_a_silent_machine_goes_offline(
    bus: Bus, mongo_db: Any, agents: Agents, monitor: Worker
) -> None:
    t4_id, a100_id = DEMO_QUEUE_IDS["gpu-t4"], DEMO_QUEUE_IDS["gpu-a100"]

    async def t4_free() -> dict[str, Any] | None:
        return await stored(mongo_db, "queues", t4_id, free_gpus=2)

    t4 = await eventually(t4_free, what="gpu-t4 stored with the idle T4 box's 2 free GPUs")
    assert (t4["name"], t4["workers"], t4["idle_workers"]) == (
        "gpu-t4",
        ["t4-box-01:gpu0"],
        ["t4-box-01:gpu0"],
    )
    a100 = await eventually(lambda: stored(mongo_db, "queues", a100_id), what="gpu-a100 stored")
    assert a100["free_gpus"] == 0  # idle workers, but their GPUs are busy
    assert a100["workers"] == ["gpu-box-01:gpu0", "gpu-box-02:gpu0"]
    box = await eventually(
        lambda: stored(mongo_db, "resources", "gpu-box-01", online=True), what="gpu-box-01"
    )
    assert (box["workers"], box["queues"], len(box["gpus"])) == (
        ["gpu-box-01:gpu0"],
        ["gpu-a100"],
        2,
    )
    assert box["ips"]
    await eventually(
        lambda: stored(mongo_db, "resources", "edge-box-07", online=True, workers=[]),
        what="the heartbeat-only box online",
    )

    published = await read_topic(bus, RESOURCE_STATE)
    assert {"gpu-box-01", "gpu-box-02", "t4-box-01", "edge-box-07"} <= {k for k, _ in published}
    queues = await read_topic(bus, QUEUE_STATE)
    assert any(k == t4_id and q.free_gpus == 2 for k, q in queues)

    del agents.loads["edge-box-07"]  # its agent stops
    offline = await eventually(
        lambda: stored(mongo_db, "resources", "edge-box-07", online=False),
        timeout_s=10,
        what="the silent box stored offline",
    )
    assert offline["free_gpus"] == 0

    async def published_offline() -> bool:
        states = await read_topic(bus, RESOURCE_STATE)
        return any(k == "edge-box-07" and not s.online for k, s in states)

    await eventually(published_offline, what="the silent box published offline")


def auth(issuer: Issuer, user: str = "alice", roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user, roles)}"}


async def test_auto_picks_the_allowed_queue_whose_worker_has_a_free_gpu_and_says_so(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    sim: SimServer,
    enqueuer: Worker,
    monitor: Worker,
    mongo_db: Any,
    parking_task_id: str,
) -> None:
    await eventually(
        lambda: stored(mongo_db, "queues", DEMO_QUEUE_IDS["gpu-t4"], free_gpus=2),
        what="queue states in the read model",
    )
    response = await ingest.post(
        "/v1/enqueue",
        json={"task_id": parking_task_id, "queue_name": "auto", "input": {"lr": 0.1}},
        headers=auth(issuer),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    # the mapping's default is gpu-a100, whose idle workers sit on busy GPUs
    assert body["queue"] == "gpu-t4"
    assert body["queue_choice"] == "auto: 'gpu-t4' has 2 free GPUs now"
    rid = body["request_id"]

    async def queued() -> dict[str, Any] | None:
        got = (await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer))).json()
        return got if got["status"] in ("queued", "running", "completed") else None

    status = await eventually(queued, what="the auto request queued")
    assert status["queue"] == "gpu-t4"
    assert status["queue_choice"] == body["queue_choice"]
    assert status["timeline"][0] == {
        "status": "accepted",
        "at": status["timeline"][0]["at"],
        "message": body["queue_choice"],
    }
    clones = [t for t in sim.state.tasks.values() if f"mlbus-request:{rid}" in t.get("tags", [])]
    assert len(clones) == 1
    assert clones[0].get("execution", {}).get("queue") == DEMO_QUEUE_IDS["gpu-t4"]

    compat = await ingest.post(
        "/clearml/serve/enqueue_task",
        json={
            "access_token": issuer.token(),
            "task_id": parking_task_id,
            "queue": "auto",
            "params": {},
        },
    )
    assert compat.status_code == 202, compat.text
    assert compat.json()["queue"] in ("gpu-t4", "gpu-a100")
    assert compat.json()["queue_choice"].startswith("auto: ")


async def test_resources_hide_machine_names_from_a_plain_user(
    ingest: httpx.AsyncClient, issuer: Issuer, monitor: Worker, mongo_db: Any
) -> None:
    await eventually(
        lambda: stored(mongo_db, "resources", "t4-box-01", online=True), what="machine states"
    )
    await eventually(
        lambda: stored(mongo_db, "queues", DEMO_QUEUE_IDS["gpu-t4"], free_gpus=2),
        what="queue states",
    )
    response = await ingest.get("/v1/resources", headers=auth(issuer))
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["machines"]["online"] >= 4
    assert view["gpus"]["free"] >= 4  # the T4 box and the edge box, two each
    t4 = next(q for q in view["queues"] if q["name"] == "gpu-t4")
    assert (t4["workers"], t4["has_free_gpu"], t4["worker_ids"]) == (1, True, None)
    assert view["machine_details"] is None
    for secret in ("gpu-box-01", "t4-box", "10.0.0."):
        assert secret not in response.text

    operator = await ingest.get("/v1/resources", headers=auth(issuer, "op", ["AreaManager"]))
    detailed = operator.json()
    names = {m["machine_id"] for m in detailed["machine_details"]}
    assert {"gpu-box-01", "gpu-box-02", "t4-box-01", "edge-box-07"} <= names
    t4 = next(q for q in detailed["queues"] if q["name"] == "gpu-t4")
    assert t4["worker_ids"] == ["t4-box-01:gpu0"]
    assert all(m["ips"] is None for m in detailed["machine_details"])  # addresses: admins only
    admin = await ingest.get("/v1/resources", headers=auth(issuer, "root", ["RootAdmin"]))
    assert any(m["ips"] for m in admin.json()["machine_details"])

    anonymous = await ingest.get("/v1/resources")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
