"""What happens when things go wrong on the enqueue path: poison messages, duplicates, a worker
killed half-way, ClearML down for a while or for too long."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from clearml_sim.testing import SimServer
from schemas.codec import decode, encode, envelope_for
from schemas.enqueue import EnqueueTask
from schemas.tasks import TaskEventKind
from schemas.topics import DEAD_LETTERS, ENQUEUE_REQUESTS, TASK_EVENTS
from tests.conftest import Bus
from tests.fixtures import PARKING, enqueuer_settings, running_enqueuer
from tests.processes import running_process
from tests.support import eventually

OPAQUE = "cd" * 16


def request(rid: str | None = None, queue: str = "gpu-a100") -> Any:
    payload = EnqueueTask(
        task_id=OPAQUE, template_task_id=PARKING, queue_name=queue, input={"lr": 0.3}
    )
    fields = {"id": rid} if rid else {}
    return envelope_for(ENQUEUE_REQUESTS, payload, user="alice", **fields)


async def produce(bus: Bus, *values: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(ENQUEUE_REQUESTS.named(bus.topic_prefix), value, key=key)
    finally:
        await producer.stop()


async def read_all(bus: Bus, topic: str, count: int, timeout_s: float = 20) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        bus.topic_prefix + topic,
        bootstrap_servers=bus.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    out: list[bytes] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return out


def clones_of(sim: SimServer, rid: str) -> list[dict[str, Any]]:
    return [t for t in sim.state.tasks.values() if f"mlbus-request:{rid}" in t.get("tags", [])]


async def log_status(mongo_db: Any, rid: str, wanted: str) -> dict[str, Any] | None:
    doc = await mongo_db["enqueue_logs"].find_one({"_id": rid})
    return doc if doc and doc["status"] == wanted else None


async def test_poison_message_is_dead_lettered_and_the_next_one_is_handled(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    good = request()
    async with running_enqueuer(enqueuer_settings(bus, sim)):
        await produce(bus, (b"k1", b"this is not json"), (good.id.encode(), encode(good)))
        await eventually(lambda: log_status(mongo_db, good.id, "queued"), what="good one queued")
        letters = await read_all(bus, DEAD_LETTERS.name, 1)
    letter = decode(DEAD_LETTERS, letters[0]).payload
    assert letter.error_class == "SchemaError"
    assert "not an mlbus envelope" in letter.reason
    assert base64.b64decode(letter.raw_b64) == b"this is not json"
    assert letter.topic == ENQUEUE_REQUESTS.named(bus.topic_prefix)


async def test_a_message_delivered_twice_makes_one_clone(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    env = request()
    async with running_enqueuer(enqueuer_settings(bus, sim)):
        await produce(bus, (env.id.encode(), encode(env)), (env.id.encode(), encode(env)))
        await eventually(lambda: log_status(mongo_db, env.id, "queued"), what="queued")
        events = await read_all(bus, TASK_EVENTS.name, 1)
    assert len(clones_of(sim, env.id)) == 1
    doc = await mongo_db["enqueue_logs"].find_one({"_id": env.id})
    assert [h["status"] for h in doc["history"]] == ["accepted", "cloned", "queued"]
    assert decode(TASK_EVENTS, events[0]).payload.kind == TaskEventKind.ENQUEUED


async def test_worker_killed_between_clone_and_enqueue_resumes_with_the_same_clone(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    env = request()
    async with httpx.AsyncClient(base_url=sim.url) as control:
        # tasks.enqueue fails (5xx) so the worker is stuck retrying after it cloned
        await control.post("/_sim/faults", json={"error_rate": 1.0, "endpoints": ["tasks.enqueue"]})
        slow = enqueuer_settings(bus, sim, retry_attempts=50, retry_cap_s=0.3)
        async with running_process("enqueuer", slow) as worker:
            await produce(bus, (env.id.encode(), encode(env)))

            async def cloned() -> bool:
                return bool(clones_of(sim, env.id))

            await eventually(cloned, timeout_s=60, what="the clone made")
            worker.kill()  # SIGKILL: no shutdown code runs, nothing more is committed
        # MongoDB knows only that the request was accepted: ClearML's tag must find the clone
        assert (await mongo_db["enqueue_logs"].find_one({"_id": env.id}))["status"] == "accepted"
        await control.delete("/_sim/faults")
        async with running_enqueuer(enqueuer_settings(bus, sim)):
            # the killed worker holds its partitions until its group session times out
            await eventually(
                lambda: log_status(mongo_db, env.id, "queued"), timeout_s=60, what="resumed"
            )
    clones = clones_of(sim, env.id)
    assert len(clones) == 1
    assert clones[0]["status"] in {"queued", "in_progress", "completed"}


async def test_clearml_down_for_a_while_the_request_waits_and_completes(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    env = request()
    async with httpx.AsyncClient(base_url=sim.url) as control:
        await control.post("/_sim/faults", json={"outage_s": 1.5})
        patient = enqueuer_settings(bus, sim, retry_attempts=12, retry_cap_s=0.5)
        async with running_enqueuer(patient):
            await produce(bus, (env.id.encode(), encode(env)))
            await eventually(lambda: log_status(mongo_db, env.id, "queued"), what="queued")
    assert len(clones_of(sim, env.id)) == 1


async def test_clearml_down_past_the_retry_bound_fails_clearly(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    env = request()
    async with httpx.AsyncClient(base_url=sim.url) as control:
        await control.post("/_sim/faults", json={"outage_s": 60})
        async with running_enqueuer(enqueuer_settings(bus, sim, retry_attempts=3)):
            await produce(bus, (env.id.encode(), encode(env)))
            doc = await eventually(lambda: log_status(mongo_db, env.id, "failed"), what="failed")
            letters = await read_all(bus, DEAD_LETTERS.name, 1)
        await control.delete("/_sim/faults")
    assert doc["error"] == "The cluster could not be reached in time; the request was not enqueued."
    assert decode(DEAD_LETTERS, letters[0]).payload.error_class == "ClearMLUnavailable"


async def test_unknown_queue_fails_with_words_a_flow_author_understands(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    env = request(queue="nowhere")
    async with running_enqueuer(enqueuer_settings(bus, sim)):
        await produce(bus, (env.id.encode(), encode(env)))
        doc = await eventually(lambda: log_status(mongo_db, env.id, "failed"), what="failed")
        events = await read_all(bus, TASK_EVENTS.name, 1)
    assert doc["error"] == "The queue 'nowhere' does not exist on the cluster."
    event = decode(TASK_EVENTS, events[0]).payload
    assert event.kind == TaskEventKind.ENQUEUE_FAILED
    assert event.message == doc["error"]
