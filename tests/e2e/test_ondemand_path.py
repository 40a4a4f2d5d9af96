"""On-demand inference through every piece: HTTP → ingest → Kafka → inference_router → a real
serving node → reply topic → HTTP, on both the v1 and the Node-RED paths."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.inference_router.app import run as run_router
from services.inference_router.settings import InferenceRouterSettings
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.fixtures import Worker, running_worker
from tests.support import Issuer

FEATURES = {
    "capacity": 120,
    "hour": 3,
    "weekday": 2,
    "temperature_c": 10.0,
    "rain_mm": 0.0,
    "event_nearby": False,
}


def router_settings(bus: Bus) -> InferenceRouterSettings:
    return InferenceRouterSettings(**bus.settings(), instance="router-test", health_interval_s=0)


@contextlib.asynccontextmanager
async def router(bus: Bus) -> AsyncIterator[Worker]:
    async with running_worker(run_router, router_settings(bus)) as worker:
        yield worker


async def register(
    ingest: httpx.AsyncClient, issuer: Issuer, node: RunningNode, timeout_s: float = 5.0
) -> str:
    admin = {"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"}
    machine = await ingest.post(
        "/v1/admin/serving-machines",
        headers=admin,
        json={"serving_task_id": "7a" * 16, "base_urls": [node.serve_url]},
    )
    machine_id: str = machine.json()["machine_id"]
    endpoint = await ingest.post(
        "/v1/admin/endpoint-mappings",
        headers=admin,
        json={"machine_id": machine_id, "endpoint": "parking_free_slots", "timeout_s": timeout_s},
    )
    assert endpoint.status_code == 201, endpoint.text
    return machine_id


async def test_both_paths_return_the_model_answer_and_its_errors(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, node: RunningNode
) -> None:
    machine_id = await register(ingest, issuer, node)
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    call = {"machine_id": machine_id, "endpoint": "parking_free_slots"}
    async with router(bus):
        v1 = await ingest.post("/v1/ondemand", json={**call, "input": FEATURES}, headers=headers)
        compat = await ingest.post(
            "/clearml/serve/ondemand",
            json={**call, "access_token": issuer.token(), "params": FEATURES},
        )
        rejected = await ingest.post(
            "/v1/ondemand", json={**call, "input": {"capacity": 120}}, headers=headers
        )
    assert v1.status_code == 200, v1.text
    answer = v1.json()["output"]
    assert 0 <= answer["free_slots"] <= 120
    assert compat.status_code == 200
    assert compat.json() == answer  # the model's own JSON, unwrapped, for the Node-RED node
    assert rejected.status_code == 422
    assert "hour" in rejected.json()["message"]
    assert node.request_count(v1.json()["request_id"]) == 1


async def test_a_router_restarted_mid_burst_leaves_no_caller_hanging_past_its_deadline(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, node: RunningNode
) -> None:
    timeout_s = 3.0
    machine_id = await register(ingest, issuer, node, timeout_s=timeout_s)
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    body = {"machine_id": machine_id, "endpoint": "parking_free_slots", "input": FEATURES}
    node.set_faults(latency_ms=50)

    async def one() -> tuple[int, float]:
        started = time.monotonic()
        response = await ingest.post("/v1/ondemand", json=body, headers=headers)
        return response.status_code, time.monotonic() - started

    async with router(bus) as first:
        warm_up, _ = await one()  # the group exists and has a member before the burst
        assert warm_up == 200
        burst = [asyncio.create_task(one()) for _ in range(40)]
        await asyncio.sleep(0.3)
        await first.kill()
    async with router(bus):
        results: list[Any] = await asyncio.gather(*burst)
    statuses = [status for status, _ in results]
    assert all(status in (200, 504) for status in statuses), statuses
    assert max(elapsed for _, elapsed in results) < timeout_s + 2.5
    assert statuses.count(200) >= 1
