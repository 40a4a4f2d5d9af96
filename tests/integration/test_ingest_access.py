"""Allowed networks and quotas through a real ingest on real Kafka and FerretDB."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from schemas.codec import decode
from schemas.topics import NOTIFICATIONS
from services.ingest.app import create_app
from tests.conftest import Bus
from tests.fixtures import PARKING, ingest_settings
from tests.support import Issuer, ThreadedServer


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def map_parking(client: httpx.AsyncClient, issuer: Issuer) -> str:
    response = await client.post(
        "/v1/admin/task-mappings",
        json={"clearml_task_id": PARKING, "default_queue": "gpu-a100"},
        headers=bearer(issuer.token("admin", ["RootAdmin"])),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


async def test_an_address_outside_the_allowed_networks_is_refused_before_anything_else(
    bus: Bus, issuer: Issuer
) -> None:
    async with ingest_with(
        bus, issuer, allowed_networks=("10.0.0.0/8",), refusal_alert_count=3
    ) as client:
        consumer = AIOKafkaConsumer(
            NOTIFICATIONS.named(bus.topic_prefix),
            bootstrap_servers=bus.kafka_bootstrap,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            for _ in range(4):
                refused = await client.get("/v1/notifications", headers=bearer(issuer.token()))
                assert refused.status_code == 403
                body = refused.json()
                assert body["code"] == "address_not_allowed"
                assert "127.0.0.1" in body["message"]
                assert body["request_id"] == refused.headers["x-request-id"]
            # A forged header from an untrusted peer changes nothing.
            spoofed = await client.get(
                "/v1/notifications",
                headers={"X-Forwarded-For": "10.0.0.1", **bearer(issuer.token())},
            )
            assert spoofed.status_code == 403
            assert (await client.get("/healthz")).status_code == 200  # probes stay open
            records = await consumer.getmany(timeout_ms=5000)
            notices = [
                decode(NOTIFICATIONS, r.value).payload for rs in records.values() for r in rs
            ]
        finally:
            await consumer.stop()
    assert [(n.kind, n.subject) for n in notices] == [("access_refused", "127.0.0.1")]


async def test_forwarded_for_from_a_trusted_proxy_and_per_role_networks(
    bus: Bus, issuer: Issuer
) -> None:
    async with ingest_with(
        bus,
        issuer,
        allowed_networks=("10.0.0.0/8",),
        trusted_proxies=("127.0.0.1/32",),
        role_networks={"admin": ("10.9.0.0/16",)},
    ) as client:
        user, admin = bearer(issuer.token()), bearer(issuer.token("root", ["RootAdmin"]))
        via = {"X-Forwarded-For": "10.1.2.3"}
        assert (await client.get("/v1/notifications", headers={**via, **user})).status_code == 200
        outside = await client.get("/v1/admin/task-mappings", headers={**via, **admin})
        assert outside.status_code == 403
        assert outside.json()["code"] == "address_not_allowed"
        inside = {"X-Forwarded-For": "10.9.0.5"}
        assert (
            await client.get("/v1/admin/task-mappings", headers={**inside, **admin})
        ).status_code == 200


async def test_rate_quota_gives_429_with_retry_after_then_allows_again(
    bus: Bus, issuer: Issuer
) -> None:
    async with ingest_with(
        bus, issuer, quota_window_s=2.0, rate_quotas={"enqueue": {"user": 2}}
    ) as client:
        task_id = await map_parking(client, issuer)
        body, alice = {"task_id": task_id, "input": {}}, bearer(issuer.token())
        first = [await client.post("/v1/enqueue", json=body, headers=alice) for _ in range(2)]
        assert [r.status_code for r in first] == [202, 202]
        over = await client.post("/v1/enqueue", json=body, headers=alice)
        assert over.status_code == 429
        assert over.json()["code"] == "quota_exceeded"
        # The window is counted in ten buckets: it may last up to one bucket (0.2 s) longer.
        wait = int(over.headers["Retry-After"])
        assert 1 <= wait <= 3
        other = await client.post("/v1/enqueue", json=body, headers=bearer(issuer.token("bob")))
        assert other.status_code == 202  # quotas are per user
        await asyncio.sleep(wait)
        assert (await client.post("/v1/enqueue", json=body, headers=alice)).status_code == 202


async def test_task_quota_frees_a_slot_when_a_task_ends(
    bus: Bus, issuer: Issuer, mongo_db: Any
) -> None:
    async with ingest_with(bus, issuer, task_quotas={"user": 1}) as client:
        task_id = await map_parking(client, issuer)
        body, alice = {"task_id": task_id, "input": {}}, bearer(issuer.token())
        unknown = await client.post("/v1/enqueue", json={"task_id": "ab" * 16}, headers=alice)
        assert unknown.status_code == 404  # a refused request gives its slot back
        accepted = await client.post("/v1/enqueue", json=body, headers=alice)
        assert accepted.status_code == 202
        over = await client.post("/v1/enqueue", json=body, headers=alice)
        assert over.status_code == 429
        assert "1 of your tasks" in over.json()["message"]
        # The enqueuer and monitor would write this; here the test plays them.
        rid = accepted.json()["request_id"]
        await mongo_db["enqueue_logs"].insert_one({"_id": rid, "status": "completed"})
        assert (await client.post("/v1/enqueue", json=body, headers=alice)).status_code == 202
