"""Nothing is published for a refused request: every kind of refusal (401, 403, 404, 409, 413,
422, 429) on every request path, then the request topics are read to the end."""

from __future__ import annotations

import asyncio

import httpx
from aiokafka import AIOKafkaConsumer

from schemas.topics import ENQUEUE_REQUESTS, INFERENCE_REQUESTS
from services.ingest.app import create_app
from tests.conftest import Bus
from tests.fixtures import PARKING, ingest_settings
from tests.support import Issuer, ThreadedServer

DEEP = "[" * 100 + "]" * 100


async def records_on(bus: Bus, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bus.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=2000)
        return [r.key for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def test_no_refusal_publishes_anything(bus: Bus, issuer: Issuer) -> None:
    settings = ingest_settings(bus, issuer, user_rate_quotas={"carol": {"enqueue": 1}})
    server = ThreadedServer(create_app(settings), "ingest")
    await asyncio.to_thread(server.start)
    admin = {"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"}
    alice = {"Authorization": f"Bearer {issuer.token('alice')}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            mapping = await client.post(
                "/v1/admin/task-mappings?force=true",
                json={"clearml_task_id": PARKING, "default_queue": "gpu-a100"},
                headers=admin,
            )
            task_id = mapping.json()["task_id"]
            enqueue = {"task_id": task_id, "input": {}}
            ondemand = {"machine_id": "ab" * 16, "endpoint": "e", "input": {}}
            refusals = {
                "401 no token": await client.post("/v1/enqueue", json=enqueue),
                "401 bad token": await client.post(
                    "/v1/ondemand", json=ondemand, headers={"Authorization": "Bearer x.y.z"}
                ),
                "401 compat": await client.post(
                    "/clearml/serve/enqueue_task", json={"task_id": task_id}
                ),
                "403 queue": await client.post(
                    "/v1/enqueue", json={**enqueue, "queue_name": "secret"}, headers=alice
                ),
                "404 task": await client.post(
                    "/v1/enqueue", json={"task_id": "cd" * 16, "input": {}}, headers=alice
                ),
                "404 machine": await client.post("/v1/ondemand", json=ondemand, headers=alice),
                "413 body": await client.post(
                    "/v1/enqueue",
                    json={**enqueue, "input": {"x": "y" * 1_100_000}},
                    headers=alice,
                ),
                "422 deep": await client.post(
                    "/v1/enqueue",
                    content=f'{{"task_id": "{task_id}", "input": {{"x": {DEEP}}}}}',
                    headers={**alice, "content-type": "application/json"},
                ),
                "422 field": await client.post(
                    "/v1/ondemand", json={"endpoint": "e"}, headers=alice
                ),
            }
            carol = {"Authorization": f"Bearer {issuer.token('carol')}"}
            accepted = await client.post("/v1/enqueue", json=enqueue, headers=carol)
            refusals["429 quota"] = await client.post("/v1/enqueue", json=enqueue, headers=carol)
            key = {**carol, "Idempotency-Key": "k-1"}
            refusals["429 then reused key"] = await client.post(
                "/v1/enqueue", json=enqueue, headers=key
            )
    finally:
        await asyncio.to_thread(server.stop)
    for name, response in refusals.items():
        assert response.status_code == int(name[:3]), (name, response.text)
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert accepted.status_code == 202
    enqueued = await records_on(bus, ENQUEUE_REQUESTS.named(bus.topic_prefix))
    assert enqueued == [accepted.json()["request_id"].encode()]  # the one accepted, alone
    assert await records_on(bus, INFERENCE_REQUESTS.named(bus.topic_prefix)) == []
