"""Quotas hold across ingest copies: two real ingests on one Kafka and one FerretDB."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.ingest.app import create_app
from tests.conftest import Bus
from tests.fixtures import ingest_settings
from tests.integration.test_ingest_access import bearer, map_parking
from tests.support import Issuer, ThreadedServer


@contextlib.asynccontextmanager
async def two_ingests(
    bus: Bus, issuer: Issuer, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    servers = [
        ThreadedServer(create_app(ingest_settings(bus, issuer, **overrides)), f"ingest-{i}")
        for i in (1, 2)
    ]
    for server in servers:
        await asyncio.to_thread(server.start)
    try:
        async with (
            httpx.AsyncClient(base_url=servers[0].url, timeout=15) as one,
            httpx.AsyncClient(base_url=servers[1].url, timeout=15) as two,
        ):
            yield one, two
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)


async def test_a_rate_quota_counts_the_requests_of_every_copy(bus: Bus, issuer: Issuer) -> None:
    # A store slower than the timeout makes each copy count alone (by design, logged); here the
    # shared count is under test, so the store is given time even on a loaded machine.
    async with two_ingests(
        bus, issuer, rate_quotas={"enqueue": {"user": 4}}, quota_store_timeout_s=10.0
    ) as (one, two):
        task_id = await map_parking(one, issuer)
        body, alice = {"task_id": task_id, "input": {}}, bearer(issuer.token())
        answers = await asyncio.gather(
            *(c.post("/v1/enqueue", json=body, headers=alice) for c in (one, two) * 4)
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [202] * 4 + [429] * 4, [r.text for r in answers]
        refused = next(r for r in answers if r.status_code == 429)
        assert refused.json()["code"] == "quota_exceeded"
        assert int(refused.headers["Retry-After"]) >= 1
        bob = bearer(issuer.token("bob"))
        assert (await two.post("/v1/enqueue", json=body, headers=bob)).status_code == 202


async def test_a_task_quota_holds_across_copies_and_frees_when_a_task_ends(
    bus: Bus, issuer: Issuer, mongo_db: Any
) -> None:
    async with two_ingests(bus, issuer, task_quotas={"user": 2}, quota_store_timeout_s=10.0) as (
        one,
        two,
    ):
        task_id = await map_parking(one, issuer)
        body, alice = {"task_id": task_id, "input": {}}, bearer(issuer.token())
        answers = await asyncio.gather(
            *(c.post("/v1/enqueue", json=body, headers=alice) for c in (one, two) * 3)
        )
        accepted = [r for r in answers if r.status_code == 202]
        # Seats: a request refused saw both seats taken, so racing copies fill the quota exactly.
        assert len(accepted) == 2, [r.text for r in answers]
        assert sum(r.status_code == 429 for r in answers) == 4
        assert (await one.post("/v1/enqueue", json=body, headers=alice)).status_code == 429
        assert (await two.post("/v1/enqueue", json=body, headers=alice)).status_code == 429
        # The enqueuer and monitor would write this; here the test plays them.
        rid = accepted[0].json()["request_id"]
        await mongo_db["enqueue_logs"].insert_one({"_id": rid, "status": "failed"})
        assert (await one.post("/v1/enqueue", json=body, headers=alice)).status_code == 202
        assert (await two.post("/v1/enqueue", json=body, headers=alice)).status_code == 429
