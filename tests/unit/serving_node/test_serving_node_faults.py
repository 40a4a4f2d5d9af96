"""Fault knobs: latency, injected errors, status override, not-ready and hang, per endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import ValidationError

from serving_node import Faults, NodeConfig, ServingNodeApp, create_app
from serving_node.endpoints import EchoEndpoint, EndpointRegistry
from serving_node.faults import FaultState
from serving_node.testing import RunningNode


async def _eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def _set(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    response = await client.post("/_node/faults", json=body)
    assert response.status_code == 200, response.text
    return response


async def test_no_faults_means_nothing_on_the_request_path() -> None:
    state = FaultState(["echo"])
    assert state.for_request("echo") is None
    state.update(not_ready=True)  # probes only
    assert state.for_request("echo") is None


async def test_latency_is_added(client: httpx.AsyncClient) -> None:
    await _set(client, latency_ms=80)
    started = time.perf_counter()
    response = await client.post("/serve/echo", json={})
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.08


async def test_error_rate_one_always_fails(client: httpx.AsyncClient) -> None:
    await _set(client, error_rate=1.0)
    for _ in range(5):
        response = await client.post("/serve/echo", json={})
        assert response.status_code == 500
        assert response.json() == {"detail": "injected fault"}


async def test_error_rate_is_a_fraction(client: httpx.AsyncClient) -> None:
    await _set(client, error_rate=0.5)
    codes = [(await client.post("/serve/echo", json={})).status_code for _ in range(400)]
    assert 120 < codes.count(500) < 280
    assert codes.count(500) + codes.count(200) == 400


@pytest.mark.parametrize("status", [422, 500, 503])
async def test_status_override(client: httpx.AsyncClient, status: int) -> None:
    await _set(client, status_override=status)
    response = await client.post("/serve/parking_free_slots", json={})
    assert response.status_code == status
    assert response.json() == {"detail": f"injected status {status}"}


async def test_endpoint_fault_leaves_other_endpoints_alone(client: httpx.AsyncClient) -> None:
    await _set(client, endpoint="echo", status_override=500)
    assert (await client.post("/serve/echo", json={})).status_code == 500
    assert (await client.post("/serve/echo/1", json={})).status_code == 500
    body = {"capacity": 10, "hour": 1, "weekday": 1, "temperature_c": 1, "rain_mm": 0}
    response = await client.post("/serve/parking_free_slots", json={**body, "event_nearby": False})
    assert response.status_code == 200


async def test_endpoint_override_beats_global(client: httpx.AsyncClient) -> None:
    await _set(client, error_rate=1.0)
    await _set(client, endpoint="echo", error_rate=0.0)
    assert (await client.post("/serve/echo", json={})).status_code == 200
    assert (await client.post("/serve/parking_free_slots", json={})).status_code == 500


async def test_null_resets_a_field(client: httpx.AsyncClient) -> None:
    await _set(client, status_override=500, latency_ms=5)
    described = (await _set(client, status_override=None)).json()
    assert described["global"] == {"latency_ms": 5}
    assert (await client.post("/serve/echo", json={})).status_code == 200


async def test_delete_clears_all_or_one_endpoint(client: httpx.AsyncClient) -> None:
    await _set(client, endpoint="echo", error_rate=1.0)
    await _set(client, endpoint="parking_free_slots", error_rate=1.0)
    await client.delete("/_node/faults", params={"endpoint": "echo"})
    assert (await client.post("/serve/echo", json={})).status_code == 200
    assert (await client.post("/serve/parking_free_slots", json={})).status_code == 500
    cleared = (await client.delete("/_node/faults")).json()
    assert cleared["global"] == {}
    assert cleared["endpoints"] == {}
    assert (await client.post("/serve/parking_free_slots", json={})).status_code == 422


async def test_cli_faults_are_the_baseline_that_delete_returns_to() -> None:
    app = create_app(
        NodeConfig(faults=Faults(status_override=503)), EndpointRegistry([EchoEndpoint()])
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as c:
        assert (await c.post("/serve/echo", json={})).status_code == 503
        await _set(c, status_override=None)
        assert (await c.post("/serve/echo", json={})).status_code == 200
        await c.delete("/_node/faults")
        assert (await c.post("/serve/echo", json={})).status_code == 503


@pytest.mark.parametrize(
    "body",
    [{"error_rate": 1.5}, {"latency_ms": -1}, {"status_override": 200}, {"bogus": 1}, "nope"],
)
async def test_bad_fault_patch_is_422(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/_node/faults", json=body)
    assert response.status_code == 422
    assert "detail" in response.json()


async def test_fault_for_unknown_endpoint_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/_node/faults", json={"endpoint": "nope", "hang": True})
    assert response.status_code == 404


async def test_not_ready_fails_readiness(client: httpx.AsyncClient) -> None:
    await _set(client, not_ready=True)
    response = await client.get("/readiness")
    assert response.status_code == 503
    assert response.json()["detail"]["reason"] == "not ready"
    await _set(client, not_ready=None)
    assert (await client.get("/readiness")).status_code == 200


async def test_endpoint_not_ready_shows_in_metrics(client: httpx.AsyncClient) -> None:
    await _set(client, endpoint="echo", not_ready=True)
    readiness = await client.get("/readiness")
    assert readiness.status_code == 503
    assert readiness.json()["detail"]["endpoints_not_loaded"] == ["echo"]
    models = (await client.get("/metrics")).json()["models"]
    assert {m["endpoint"]: m["loaded"] for m in models} == {
        "parking_free_slots": True,
        "echo": False,
    }


async def test_hang_holds_requests_until_cleared(
    client: httpx.AsyncClient, app: ServingNodeApp
) -> None:
    await _set(client, endpoint="echo", hang=True)
    pending = asyncio.create_task(client.post("/serve/echo", json={"n": 1}))
    await _eventually(lambda: app.state.stats.requests["echo"] == 1)
    await asyncio.sleep(0.2)
    assert not pending.done()
    app.state.faults.clear()  # the knob may be turned from any thread, without HTTP
    response = await asyncio.wait_for(pending, 30)  # the hang would last an hour
    assert response.json() == {"echo": {"n": 1}}


async def test_hang_ends_after_hang_s(client: httpx.AsyncClient) -> None:
    await _set(client, hang=True, hang_s=0.15)
    started = time.perf_counter()
    response = await client.post("/serve/echo", json={})
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_test_helper_validates_knobs(app: ServingNodeApp) -> None:
    node = RunningNode(app)  # not started: knobs can be set before the first request
    node.set_faults(endpoint="echo", latency_ms=5)
    assert app.state.faults.effective("echo").latency_ms == 5
    with pytest.raises(ValidationError):
        node.set_faults(error_rate=2.0)
