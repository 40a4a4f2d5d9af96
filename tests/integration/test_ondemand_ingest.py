"""Ingest's on-demand path over real Kafka, with the test playing the router: it reads
InferenceRequested from the bus and answers on the request's reply topic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.codec import decode, encode, envelope_for
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.topics import INFERENCE_REQUESTS, REPLY_TEMPLATE
from tests.conftest import Bus
from tests.support import Issuer

SERVICE_TASK = "5e" * 16
Answer = Callable[[InferenceRequested], InferenceReplied | None]


@contextlib.asynccontextmanager
async def fake_router(bus: Bus, answer: Answer) -> AsyncIterator[list[str]]:
    """Answers every request with `answer(payload)` (None: no answer); yields the ids seen."""
    seen: list[str] = []
    consumer = AIOKafkaConsumer(
        INFERENCE_REQUESTS.named(bus.topic_prefix),
        bootstrap_servers=bus.kafka_bootstrap,
        group_id="fake-router",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()

    async def loop() -> None:
        async for record in consumer:
            env = decode(INFERENCE_REQUESTS, record.value)
            seen.append(env.id)
            reply = answer(env.payload)
            if reply is not None:
                out = envelope_for(REPLY_TEMPLATE, reply, id=env.id)
                await producer.send_and_wait(env.payload.reply_to, encode(out), key=record.key)

    task = asyncio.create_task(loop())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()
        await producer.stop()


async def register(ingest: httpx.AsyncClient, issuer: Issuer, timeout_s: float = 5.0) -> str:
    admin = {"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"}
    machine = await ingest.post(
        "/v1/admin/serving-machines",
        json={"serving_task_id": SERVICE_TASK, "base_urls": ["http://127.0.0.1:9/serve"]},
        headers=admin,
    )
    assert machine.status_code == 201, machine.text
    machine_id: str = machine.json()["machine_id"]
    endpoint = await ingest.post(
        "/v1/admin/endpoint-mappings",
        json={"machine_id": machine_id, "endpoint": "parking_free_slots", "timeout_s": timeout_s},
        headers=admin,
    )
    assert endpoint.status_code == 201, endpoint.text
    return machine_id


def user(issuer: Issuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token()}"}


def answers(payload: InferenceRequested) -> InferenceReplied | None:
    features: Any = payload.input
    if not isinstance(features, dict) or "hour" not in features:
        return InferenceReplied(
            ok=False, http_status=422, error_code="model_rejected", message="missing feature: hour"
        )
    if features["hour"] == 99:
        return None  # the model never answers
    return InferenceReplied(ok=True, http_status=200, output={"free_slots": 7}, model_ms=1.0)


async def test_the_model_answer_comes_back_on_both_paths(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    machine_id = await register(ingest, issuer)
    async with fake_router(bus, answers) as seen:
        v1 = await ingest.post(
            "/v1/ondemand",
            json={"machine_id": machine_id, "endpoint": "parking_free_slots", "input": {"hour": 8}},
            headers=user(issuer),
        )
        compat = await ingest.post(
            "/clearml/serve/ondemand",
            json={
                "access_token": issuer.token(),
                "machine_id": machine_id,
                "endpoint": "parking_free_slots",
                "params": {"hour": 9},
            },
        )
    assert v1.status_code == 200, v1.text
    assert v1.json() == {"status": "ok", "request_id": seen[0], "output": {"free_slots": 7}}
    assert compat.status_code == 200
    assert compat.json() == {"free_slots": 7}  # the model's own JSON, as the node expects


async def test_the_model_rejection_keeps_its_status_and_detail(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    machine_id = await register(ingest, issuer)
    async with fake_router(bus, answers):
        response = await ingest.post(
            "/v1/ondemand",
            json={"machine_id": machine_id, "endpoint": "parking_free_slots", "input": {}},
            headers=user(issuer),
        )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "model_rejected"
    assert body["message"] == "missing feature: hour"


@pytest.mark.parametrize(
    ("machine", "endpoint", "code"),
    [("ab" * 16, "parking_free_slots", "machine_not_found"), (None, "nope", "endpoint_not_found")],
)
async def test_unknown_machine_or_endpoint_is_404_and_nothing_is_published(
    bus: Bus,
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    machine: str | None,
    endpoint: str,
    code: str,
) -> None:
    machine_id = await register(ingest, issuer)
    async with fake_router(bus, answers) as seen:
        response = await ingest.post(
            "/v1/ondemand",
            json={"machine_id": machine or machine_id, "endpoint": endpoint, "input": {}},
            headers=user(issuer),
        )
        await asyncio.sleep(0.5)  # give a wrongly published request time to show up
    assert response.status_code == 404
    assert response.json()["code"] == code
    assert seen == []


async def test_no_answer_within_the_endpoint_timeout_is_504(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    machine_id = await register(ingest, issuer, timeout_s=0.5)
    async with fake_router(bus, answers):
        response = await ingest.post(
            "/v1/ondemand",
            json={
                "machine_id": machine_id,
                "endpoint": "parking_free_slots",
                "input": {"hour": 99},
            },
            headers=user(issuer),
        )
    assert response.status_code == 504
    assert response.json()["code"] == "model_timeout"
