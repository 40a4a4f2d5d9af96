"""The HTTP edge's rules, through real ingest, Kafka, the workers, the ClearML simulator and the
demo model:

- the request id is minted by ingest: a client's `X-Request-ID` is a correlation id, never a
  key, so two users who send the same one get their own answers and their own requests;
- a retry with one `Idempotency-Key` runs once (one clone, one model call) and answers the same;
- every request ingest answered 202 for reaches an end: a message a worker dead-letters marks
  its request failed, tells its user, and frees the task slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from clearml_sim.testing import SimServer
from runtime.kafka import ensure_topics
from runtime.settings import BusSettings
from schemas.base import new_request_id, utcnow
from schemas.codec import decode
from schemas.tasks import TaskEventKind
from schemas.topics import ENQUEUE_REQUESTS, INFERENCE_REQUESTS, reply_topic
from services.ingest.app import create_app
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.e2e.test_enqueue_lifecycle import task_events
from tests.e2e.test_ondemand_path import FEATURES, register, router
from tests.fixtures import PARKING, Worker, ingest_settings
from tests.support import Issuer, ThreadedServer, eventually


def auth(issuer: Issuer, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user)}"}


def clones_of(sim: SimServer, rid: str) -> list[dict[str, Any]]:
    return [t for t in sim.state.tasks.values() if f"mlbus-request:{rid}" in t.get("tags", [])]


async def status_of(
    ingest: httpx.AsyncClient, issuer: Issuer, rid: str, user: str, want: set[str]
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer, user))
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] in want else None

    return await eventually(probe, what=f"{rid} {want}")


async def test_two_users_sending_one_x_request_id_get_their_own_answers(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, node: RunningNode
) -> None:
    machine_id = await register(ingest, issuer, node)
    shared = {"X-Request-ID": "chosen-by-bob-123"}
    call = {"machine_id": machine_id, "endpoint": "parking_free_slots"}
    async with router(bus):
        bob = await ingest.post(
            "/v1/ondemand",
            json={**call, "input": {**FEATURES, "capacity": 10}},
            headers={**auth(issuer, "bob"), **shared},
        )
        alice = await ingest.post(
            "/v1/ondemand",
            json={**call, "input": {**FEATURES, "capacity": 500}},
            headers={**auth(issuer, "alice"), **shared},
        )
        compat = await ingest.post(
            "/clearml/serve/ondemand",
            json={**call, "access_token": issuer.token("carol"), "params": FEATURES},
            headers=shared,
        )
    assert (bob.status_code, alice.status_code, compat.status_code) == (200, 200, 200)
    ids = {r.json().get("request_id") for r in (bob, alice)} | {compat.headers["x-request-id"]}
    assert len(ids) == 3  # three requests, three ids, none of them the client's
    assert "chosen-by-bob-123" not in ids
    assert all(r.headers["x-correlation-id"] == "chosen-by-bob-123" for r in (bob, alice, compat))
    assert bob.json()["output"]["free_slots"] <= 10 < alice.json()["output"]["free_slots"]
    for response in (bob, alice):  # each call reached the model once, under its own id
        assert node.request_count(response.json()["request_id"]) == 1


async def test_two_users_sending_one_x_request_id_get_their_own_requests(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    sim: SimServer,
    enqueuer: Worker,
    parking_task_id: str,
) -> None:
    shared = {"X-Request-ID": "chosen-by-bob-456"}
    sent = {"task_id": parking_task_id, "input": {"lr": 0.1}}
    bob = await ingest.post("/v1/enqueue", json=sent, headers={**auth(issuer, "bob"), **shared})
    alice = await ingest.post("/v1/enqueue", json=sent, headers={**auth(issuer, "alice"), **shared})
    assert (bob.status_code, alice.status_code) == (202, 202)
    rid_bob, rid_alice = bob.json()["request_id"], alice.json()["request_id"]
    assert rid_bob != rid_alice
    assert "chosen-by-bob-456" not in (rid_bob, rid_alice)
    await status_of(ingest, issuer, rid_bob, "bob", {"queued", "running", "completed"})
    await status_of(ingest, issuer, rid_alice, "alice", {"queued", "running", "completed"})
    assert (len(clones_of(sim, rid_bob)), len(clones_of(sim, rid_alice))) == (1, 1)
    other = await ingest.get(f"/v1/requests/{rid_bob}", headers=auth(issuer, "alice"))
    assert other.status_code == 404


async def test_a_retry_with_one_idempotency_key_makes_one_clone(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    sim: SimServer,
    enqueuer: Worker,
    parking_task_id: str,
) -> None:
    sent = {"task_id": parking_task_id, "input": {"lr": 0.2}}
    key = {"Idempotency-Key": "run-2026-12-02-a"}
    answers = [
        await ingest.post("/v1/enqueue", json=sent, headers={**auth(issuer, "alice"), **key})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202]
    rid = answers[0].json()["request_id"]
    assert all(a.json() == answers[0].json() for a in answers)
    assert all(a.headers["x-request-id"] == rid for a in answers)
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    await status_of(ingest, issuer, rid, "alice", {"queued", "running", "completed"})
    assert len(clones_of(sim, rid)) == 1
    # the same key on the compatibility path, with the same request: the same answer
    compat = await ingest.post(
        "/clearml/serve/enqueue_task",
        json={"access_token": issuer.token("alice"), "task_id": parking_task_id,
              "params": {"lr": 0.2}},
        headers=key,
    )  # fmt: skip
    assert compat.status_code == 422  # another path: another request, so the key is reused
    assert compat.json()["code"] == "idempotency_key_reused"
    reused = await ingest.post(
        "/v1/enqueue",
        json={**sent, "input": {"lr": 0.3}},
        headers={**auth(issuer, "alice"), **key},
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    # keys are per user: bob's same key is his own request
    bob = await ingest.post("/v1/enqueue", json=sent, headers={**auth(issuer, "bob"), **key})
    assert bob.status_code == 202
    assert bob.json()["request_id"] != rid


async def test_a_retry_with_one_idempotency_key_calls_the_model_once(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, node: RunningNode
) -> None:
    machine_id = await register(ingest, issuer, node)
    call = {"machine_id": machine_id, "endpoint": "parking_free_slots", "input": FEATURES}
    headers = {**auth(issuer, "alice"), "Idempotency-Key": "forecast-42"}
    async with router(bus):
        answers = [await ingest.post("/v1/ondemand", json=call, headers=headers) for _ in range(3)]
        rejected_key = {**auth(issuer, "alice"), "Idempotency-Key": "forecast-43"}
        bad = {**call, "input": {"capacity": 1}}  # the model answers 422
        rejections = [
            await ingest.post("/v1/ondemand", json=bad, headers=rejected_key) for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json() == answers[0].json() for a in answers)
    rid = answers[0].json()["request_id"]
    assert node.request_count(rid) == 1
    assert [r.status_code for r in rejections] == [422, 422]  # the model's own answer, kept
    assert rejections[0].json() == rejections[1].json()
    assert node.request_count(rejections[0].json()["request_id"]) == 1


async def test_json_a_worker_could_not_decode_is_refused_and_nothing_is_published(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, parking_task_id: str
) -> None:
    deep = "[" * 200 + "]" * 200
    bodies = [
        f'{{"task_id": "{parking_task_id}", "input": {{"x": {deep}}}}}',
        f'{{"task_id": "{parking_task_id}", "input": {{"x": NaN}}}}',
        f'{{"task_id": "{parking_task_id}", "input": {{"x": 1e400}}}}',
        f'{{"task_id": "{parking_task_id}", "input": {{"x": {2**64}}}}}',
    ]
    headers = {**auth(issuer, "alice"), "content-type": "application/json"}
    for raw in bodies:
        response = await ingest.post("/v1/enqueue", content=raw, headers=headers)
        assert response.status_code == 422, raw[:60]
        assert response.json()["code"] == "invalid_request"

    async def chunks() -> AsyncIterator[bytes]:
        yield f'{{"task_id": "{parking_task_id}", "input": {{"blob": "'.encode()
        for _ in range(1100):
            yield b"x" * 1024
        yield b'"}}'

    chunked = await ingest.post("/v1/enqueue", content=chunks(), headers=headers)
    assert chunked.status_code == 413
    assert chunked.json()["code"] == "body_too_large"
    assert await published(bus, ENQUEUE_REQUESTS.named(bus.topic_prefix)) == 0


async def published(bus: Bus, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bus.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=1500)
        return sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def test_the_compatibility_paths_refuse_a_missing_token_and_never_redirect(
    ingest: httpx.AsyncClient, issuer: Issuer, parking_task_id: str
) -> None:
    for path in ("/clearml/serve/enqueue_task", "/clearml/serve/ondemand"):
        for token in ({}, {"access_token": ""}, {"access_token": 5}):
            body = {"task_id": parking_task_id, "machine_id": "ab" * 16, "endpoint": "e", **token}
            response = await ingest.post(path, json=body)
            assert response.status_code == 401, (path, token, response.text)
            assert response.json()["code"] == "unauthorized"
    slash = await ingest.post(
        "/clearml/serve/enqueue_task/",
        json={"access_token": issuer.token("alice"), "task_id": parking_task_id, "queue": ""},
        headers={"Host": "evil.example"},
    )
    assert slash.status_code == 202, slash.text  # answered here, on the mapping's default queue
    assert slash.json()["queue"] == "gpu-a100"
    assert "location" not in slash.headers
    assert slash.headers["cache-control"] == "no-store"
    assert slash.headers["x-content-type-options"] == "nosniff"
    other = await ingest.post("/v1/enqueue/", headers={"Host": "evil.example"})
    assert other.status_code == 404  # no redirect anywhere
    assert "location" not in other.headers


@contextlib.asynccontextmanager
async def ingest_with(
    bus: Bus, issuer: Issuer, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    server = ThreadedServer(create_app(ingest_settings(bus, issuer, **overrides)), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)


async def map_template(ingest: httpx.AsyncClient, issuer: Issuer, template: str) -> str:
    response = await ingest.post(
        "/v1/admin/task-mappings?force=true",
        json={"clearml_task_id": template, "default_queue": "gpu-a100"},
        headers={"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


async def test_a_request_the_enqueuer_dead_letters_ends_failed_told_and_frees_its_slot(
    bus: Bus, issuer: Issuer, sim: SimServer, enqueuer: Worker
) -> None:
    """Under a real request id: a template ClearML does not have makes the enqueuer give up."""
    async with ingest_with(bus, issuer, task_quotas={"user": 1}) as ingest:
        missing = await map_template(ingest, issuer, "ee" * 16)
        good = await map_template(ingest, issuer, PARKING)
        first = await ingest.post(
            "/v1/enqueue", json={"task_id": missing, "input": {}}, headers=auth(issuer, "bob")
        )
        assert first.status_code == 202, first.text
        rid = first.json()["request_id"]
        status = await status_of(ingest, issuer, rid, "bob", {"failed"})
        assert status["error"]
        events = await task_events(bus, rid, TaskEventKind.ENQUEUE_FAILED)
        assert events[-1].user == "bob"

        async def slot_free() -> httpx.Response | None:
            again = await ingest.post(
                "/v1/enqueue", json={"task_id": good, "input": {}}, headers=auth(issuer, "bob")
            )
            return again if again.status_code == 202 else None

        await eventually(slot_free, what="the failed request's task slot given back")


async def test_a_message_the_enqueuer_cannot_decode_ends_failed_and_told(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, enqueuer: Worker
) -> None:
    """From outside ingest (a replay, another producer): the request is still failed where its
    author looks, not left `accepted` in silence."""
    rid = new_request_id()
    raw = {
        "id": rid,
        "type": "EnqueueTask",
        "schema_version": 1,
        "user": "bob",
        "payload": {"task_id": "ab" * 16, "queue_name": "gpu-a100", "input": "not an object"},
    }
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap)
    await producer.start()
    try:
        topic = ENQUEUE_REQUESTS.named(bus.topic_prefix)
        await producer.send_and_wait(topic, orjson.dumps(raw), key=rid.encode())
    finally:
        await producer.stop()
    status = await status_of(ingest, issuer, rid, "bob", {"failed"})
    assert "could not be read" in status["error"]
    events = await task_events(bus, rid, TaskEventKind.ENQUEUE_FAILED)
    assert events[-1].user == "bob"


async def test_a_message_the_router_cannot_handle_gets_a_502_reply_at_once(bus: Bus) -> None:
    """The caller of a request the router dead-letters hears so now, not at its deadline."""
    settings = BusSettings(**bus.settings())
    catcher = reply_topic("edge-test")
    await ensure_topics(settings, [catcher])
    rid = new_request_id()
    raw = {
        "id": rid,
        "type": "InferenceRequested",
        "schema_version": 1,
        "user": "bob",
        "payload": {  # no machine_id: not a valid request
            "endpoint": "parking_free_slots",
            "reply_to": catcher.named(bus.topic_prefix),
            "deadline": (utcnow() + timedelta(seconds=30)).isoformat(),
        },
    }
    consumer = AIOKafkaConsumer(
        catcher.named(bus.topic_prefix),
        bootstrap_servers=bus.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        async with router(bus):
            topic = INFERENCE_REQUESTS.named(bus.topic_prefix)
            await producer.send_and_wait(topic, orjson.dumps(raw), key=rid.encode())
            record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
        await producer.stop()
    reply = decode(catcher, record.value)
    assert reply.id == rid
    assert (reply.payload.ok, reply.payload.http_status) == (False, 502)
    assert reply.payload.error_code == "request_failed"


@pytest.mark.parametrize("lifetime_s", [3])
async def test_a_notification_stream_ends_when_its_token_expires(
    ingest: httpx.AsyncClient, issuer: Issuer, lifetime_s: int
) -> None:
    """The settings' leeway (30 s by default) counts too: a token already past it is refused, and
    one that ends during the stream ends the stream with a last event saying why."""
    import time

    token = issuer.token("alice", exp=int(time.time()) + lifetime_s - 30)
    frames: list[str] = []
    started = time.monotonic()
    async with ingest.stream(
        "GET", "/v1/notifications/stream", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            frames.append(line)
    took = time.monotonic() - started
    assert "event: token_expired" in frames
    assert took < lifetime_s + 10
