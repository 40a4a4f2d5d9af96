"""The logger against real Kafka and FerretDB: RequestLogged and task events become view
documents, index entries and counters, once per (request, status) however often delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from schemas.base import Model, utcnow
from schemas.codec import encode, envelope_for
from schemas.logs import OnDemandRecord, RequestLogged
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import LOGS, TASK_EVENTS, TopicSpec
from schemas.views import hour_key, slot_key
from services.logger.app import run as run_logger
from services.logger.settings import LoggerSettings
from tests.conftest import Bus
from tests.fixtures import Worker, running_worker
from tests.support import eventually


def logger_settings(bus: Bus) -> LoggerSettings:
    return LoggerSettings(
        **bus.settings(), instance="logger-test", retry_attempts=3, retry_cap_s=0.2
    )


@pytest.fixture
async def logger(bus: Bus) -> AsyncIterator[Worker]:
    async with running_worker(run_logger, logger_settings(bus)) as worker:
        yield worker


@pytest.fixture
async def producer(bus: Bus) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish(producer: AIOKafkaProducer, bus: Bus, spec: TopicSpec, payload: Model) -> None:
    rid = str(getattr(payload, "request_id"))  # noqa: B009 - every payload here has one
    envelope = envelope_for(spec, payload, id=rid)
    await producer.send_and_wait(spec.named(bus.topic_prefix), encode(envelope), key=rid.encode())


def folds(result: str) -> float:
    total = 0.0
    for source in ("logs", "tasks"):
        value = REGISTRY.get_sample_value(
            "mlbus_log_folds_total", {"source": source, "result": result}
        )
        total += value or 0.0
    return total


async def test_facts_fold_once_however_often_they_are_delivered(
    bus: Bus, mongo_db: Any, logger: Worker, producer: AIOKafkaProducer
) -> None:
    accepted = utcnow() - timedelta(seconds=2)
    rid, call = "a" * 32, "b" * 32
    await mongo_db["enqueue_logs"].insert_one(
        {
            "_id": rid,
            "user": "alice",
            "task_id": "t" * 32,
            "template_task_id": "real-template",
            "clone_id": "real-clone",
            "queue": "gpu-a100",
            "status": "queued",
            "accepted_at": accepted,
            "latency_ms": {"total": 41.5},
            "history": [
                {"status": "accepted", "at": accepted},
                {"status": "queued", "at": accepted},
            ],
        }
    )
    messages: list[tuple[TopicSpec, Model]] = [
        (
            LOGS,
            RequestLogged(
                request_id=rid,
                path="enqueue",
                status="queued",
                user="alice",
                target="t" * 32,
                latency_ms=41.5,
                accepted_at=accepted,
            ),
        ),
        (TASK_EVENTS, TaskEvent(kind=TaskEventKind.ENQUEUED, request_id=rid, task_id="t" * 32)),
        (TASK_EVENTS, TaskEvent(kind=TaskEventKind.STARTED, request_id=rid, task_id="t" * 32)),
        (
            LOGS,
            RequestLogged(
                request_id=call,
                path="ondemand",
                status="model_error",
                user="bob",
                target="m1/parking",
                latency_ms=12.0,
                accepted_at=accepted,
                details={"http_status": 422, "error_code": "model_rejected"},
            ),
        ),
    ]
    duplicates_before = folds("duplicate")
    for spec, payload in messages + messages:  # every message delivered twice
        await publish(producer, bus, spec, payload)

    async def all_seen() -> bool:
        return folds("duplicate") - duplicates_before >= 5  # queued thrice, started, call

    await eventually(all_seen, what="every delivery handled")
    await mongo_db["enqueue_logs"].update_one(
        {"_id": rid},
        {
            "$set": {"status": "completed"},
            "$push": {"history": {"status": "running", "at": accepted}},
        },
    )
    completed = TaskEvent(kind=TaskEventKind.COMPLETED, request_id=rid, task_id="t" * 32)
    await publish(producer, bus, TASK_EVENTS, completed)

    async def view_completed() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await mongo_db["view_enqueue_logs"].find_one({"_id": rid})
        return doc if doc and doc["status"] == "completed" else None

    view = await eventually(view_completed, what="the enqueue view to show completed")
    assert view["clone_id"] == "real-clone"
    assert view["user"] == "alice"
    hour = hour_key(accepted)
    # The view is one of the fold's writes, the counters and the index are others: the view can
    # show "completed" before they land. The claim of R/completed is marked done only once all
    # of them are applied: wait for that, then read them.
    await eventually(
        lambda: mongo_db["logger_folds"].find_one({"_id": f"{rid}/completed", "done": True}),
        what="the completed fact's fold applied",
    )
    hourly = await mongo_db["view_requests_hourly"].find_one({"_id": f"enqueue|{hour}|{'t' * 32}"})
    assert hourly["count"] == 1
    assert hourly.get("errors", 0) == 0
    assert hourly["statuses"] == {"queued": 1, "running": 1, "completed": 1}
    call_hourly = await mongo_db["view_requests_hourly"].find_one(
        {"_id": f"ondemand|{hour}|m1/parking"}
    )
    assert call_hourly["count"] == 1
    assert call_hourly["errors"] == 1
    usage = await mongo_db["view_usage_by_user"].find_one(
        {"_id": f"bob|ondemand|{accepted.strftime('%Y-%m-%d')}"}
    )
    assert usage["count"] == 1
    assert usage["errors"] == 1
    slot = slot_key("status", accepted)
    index = await mongo_db["view_log_index"].find_one({"_id": f"enqueue|status|completed|{slot}"})
    assert list(index["entries"]) == [rid]
    row = index["entries"][rid][4]  # the page reads the row from the bucket: it must be current
    assert row["status"] == "completed"
    assert [h["status"] for h in row["history"]][-1] == "running"
    stale = await mongo_db["view_log_index"].find_one({"_id": f"enqueue|status|queued|{slot}"})
    assert stale is None or rid not in (stale.get("entries") or {})


async def test_a_fact_claimed_but_never_applied_is_folded_when_delivered_again(
    bus: Bus, mongo_db: Any, logger: Worker, producer: AIOKafkaProducer
) -> None:
    """Found in review: a crash between the claim and the read-model writes (or a lost reply to
    the claim) used to make the redelivery look like a duplicate, and the fact was lost."""
    accepted = utcnow() - timedelta(seconds=2)
    rid = "c" * 32
    await mongo_db["ondemand_logs"].insert_one(
        {"_id": rid, "user": "carol", "status": "ok", "created_at": accepted}
    )
    # What a logger that died after claiming leaves behind: a claim not marked done.
    await mongo_db["logger_folds"].insert_one(
        {"_id": f"{rid}/outcome", "at": accepted, "done": False}
    )
    fact = RequestLogged(
        request_id=rid,
        path="ondemand",
        status="ok",
        user="carol",
        target="m1/parking",
        latency_ms=5.0,
        accepted_at=accepted,
    )
    await publish(producer, bus, LOGS, fact)
    usage_id = f"carol|ondemand|{accepted.strftime('%Y-%m-%d')}"
    usage = await eventually(
        lambda: mongo_db["view_usage_by_user"].find_one({"_id": usage_id}),
        what="the fact folded despite the old claim",
    )
    assert usage["count"] == 1
    claim = await eventually(
        lambda: mongo_db["logger_folds"].find_one({"_id": f"{rid}/outcome", "done": True}),
        what="the claim marked done",
    )
    assert claim["done"] is True
    before = folds("duplicate")
    await publish(producer, bus, LOGS, fact)  # now a true redelivery: counted once

    async def redelivery_seen() -> bool:
        return folds("duplicate") > before

    await eventually(redelivery_seen, what="the redelivery seen")
    usage = await mongo_db["view_usage_by_user"].find_one({"_id": usage_id})
    assert usage["count"] == 1


async def test_an_ondemand_calls_raw_log_is_written_once_and_its_two_outcomes_counted_once(
    bus: Bus, mongo_db: Any, logger: Worker, producer: AIOKafkaProducer
) -> None:
    """The logger is the one writer of `ondemand_logs`, from the record the router publishes. A
    call that a dead router answered and whose redelivery another logged `expired` has two
    outcomes: the first stays, the call counts once."""
    accepted = utcnow() - timedelta(seconds=4)
    rid = "d" * 32
    record = OnDemandRecord(
        machine_id="m1",
        endpoint="parking",
        http_status=200,
        latency_ms={"bus": 1.0, "model": 3.0, "total": 6.0},
        created_at=accepted,
        finished_at=accepted + timedelta(milliseconds=6),
    )
    ok = RequestLogged(
        request_id=rid,
        path="ondemand",
        status="ok",
        user="dora",
        target="m1/parking",
        latency_ms=6.0,
        accepted_at=accepted,
        record=record,
    )
    expired = ok.model_copy(
        update={
            "status": "expired",
            "record": record.model_copy(update={"http_status": 504, "error_code": "expired"}),
        }
    )
    before = folds("duplicate")
    await publish(producer, bus, LOGS, ok)
    await publish(producer, bus, LOGS, expired)  # same key, same partition: folded after

    async def second_seen() -> bool:
        return folds("duplicate") > before

    await eventually(second_seen, what="the second outcome seen as the same fact")
    usage_id = f"dora|ondemand|{accepted.strftime('%Y-%m-%d')}"
    raw = await mongo_db["ondemand_logs"].find_one({"_id": rid})
    assert (raw["status"], raw["http_status"], raw["user"]) == ("ok", 200, "dora")
    assert raw["created_at"] == accepted.replace(microsecond=accepted.microsecond // 1000 * 1000)
    view = await mongo_db["view_ondemand_logs"].find_one({"_id": rid})
    assert view["status"] == "ok"
    usage = await mongo_db["view_usage_by_user"].find_one({"_id": usage_id})
    assert usage["count"] == 1
