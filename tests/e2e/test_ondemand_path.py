"""On-demand inference through every piece: HTTP → ingest → Kafka → inference_router → a real
serving node → reply topic → HTTP, on both the v1 and the Node-RED paths."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.inference_router.app import run as run_router
from services.inference_router.settings import InferenceRouterSettings
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.fixtures import Worker, running_worker
from tests.processes import running_process
from tests.support import Issuer

FEATURES = {
    "capacity": 120,
    "hour": 3,
    "weekday": 2,
    "temperature_c": 10.0,
    "rain_mm": 0.0,
    "event_nearby": False,
}


def router_settings(bus: Bus, **overrides: Any) -> InferenceRouterSettings:
    fields: dict[str, Any] = {**bus.settings(), "instance": "router-test", "health_interval_s": 0}
    return InferenceRouterSettings(**{**fields, **overrides})


@contextlib.asynccontextmanager
async def router(bus: Bus, **overrides: Any) -> AsyncIterator[Worker]:
    async with running_worker(run_router, router_settings(bus, **overrides)) as worker:
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
    """Every caller of a burst cut by a router's death gets one answer, each before its
    deadline: the model's (200), or a 504 / 5xx saying it is not coming; and no request id
    reaches the model twice (the replacement router finds what the first already answered)."""
    timeout_s, burst_size = 3.0, 40
    machine_id = await register(ingest, issuer, node, timeout_s=timeout_s)
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    body = {"machine_id": machine_id, "endpoint": "parking_free_slots", "input": FEATURES}
    node.set_faults(latency_ms=50)

    async def one() -> tuple[int, str, float]:
        started = time.monotonic()
        response = await ingest.post("/v1/ondemand", json=body, headers=headers)
        return response.status_code, str(response.json()["request_id"]), time.monotonic() - started

    # A group of its own: the killed router stays a member until its session times out, and
    # the tests after this one must not wait for that to get their partitions.
    group = f"router-restart-{uuid.uuid4().hex[:8]}"
    async with running_process("inference_router", router_settings(bus, group=group)) as first:
        warm_up, _, _ = await one()  # the group exists and has a member before the burst
        assert warm_up == 200
        burst = [asyncio.create_task(one()) for _ in range(burst_size)]
        await asyncio.sleep(0.3)
        first.kill()  # SIGKILL: no shutdown code runs, nothing more is committed or flushed
    async with router(bus, group=group):
        results: list[tuple[int, str, float]] = await asyncio.gather(*burst)

    outcomes = Counter(
        "200" if status == 200 else "504" if status == 504 else "5xx" if status >= 500 else status
        for status, _, _ in results
    )
    assert sum(outcomes.values()) == burst_size  # every caller got an answer ...
    assert set(outcomes) <= {"200", "504", "5xx"}, outcomes  # ... one of these
    assert outcomes["200"] >= 1, outcomes  # the replacement router answers
    # each before its deadline (plus the HTTP leg's grace, on a loaded machine)
    late = [round(elapsed, 2) for _, _, elapsed in results if elapsed >= timeout_s + 2.5]
    assert late == []
    request_ids = [rid for _, rid, _ in results]
    assert len(set(request_ids)) == burst_size  # one request id per call, none answered twice
    calls = {rid: node.request_count(rid) for rid in request_ids}
    assert {rid: n for rid, n in calls.items() if n > 1} == {}  # no model call twice
    answered = [rid for status, rid, _ in results if status == 200]
    assert all(calls[rid] == 1 for rid in answered)  # a 200 is the model's own answer
