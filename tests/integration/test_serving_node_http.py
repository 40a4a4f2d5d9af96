"""The serving node over real HTTP: uvicorn in a thread (serving_node.testing) and the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from serving_node.testing import RunningNode

REPO = Path(__file__).resolve().parents[2]
CAR_PARK = {
    "capacity": 120,
    "hour": 18,
    "weekday": 4,
    "temperature_c": 21.0,
    "rain_mm": 0.0,
    "event_nearby": False,
}


async def test_prediction_and_health_over_http(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=5.0) as client:
        prediction = await client.post("/serve/parking_free_slots/1", json=CAR_PARK)
        health = await client.get("/health")
        metrics = await client.get("/metrics")
    assert prediction.status_code == 200
    assert 0 <= prediction.json()["free_slots"] <= 120
    assert health.json()["status"] == "healthy"
    assert metrics.json()["total_requests"] == 1
    assert node.serve_url == f"{node.url}/serve"


def test_unknown_endpoint_over_http(node: RunningNode) -> None:
    response = httpx.post(f"{node.serve_url}/nope", json={}, timeout=5.0)
    assert response.status_code == 404
    assert response.json() == {"detail": "Error processing request, endpoint was not found: nope"}


def test_control_api_over_http(node: RunningNode) -> None:
    with httpx.Client(base_url=node.url, timeout=5.0) as client:
        client.post("/_node/faults", json={"endpoint": "echo", "status_override": 500})
        assert (
            client.post("/serve/echo", json={}, headers={"X-Request-ID": "r-1"}).status_code == 500
        )
        assert client.get("/_node/requests/r-1").json()["count"] == 1
        client.delete("/_node/faults")
        assert client.post("/serve/echo", json={}).status_code == 200


def test_stopped_node_refuses_connections_and_can_come_back(node: RunningNode) -> None:
    with httpx.Client(timeout=5.0) as client:
        assert client.post(f"{node.serve_url}/echo", json={}).status_code == 200
        node.stop()
        assert not node.running
        with pytest.raises(httpx.ConnectError):
            client.post(f"{node.serve_url}/echo", json={})
        node.start()
        response = client.post(f"{node.serve_url}/echo", json={}, headers={"X-Request-ID": "r"})
        assert response.status_code == 200
    assert node.stats.total_requests == 2  # state outlives the restart


def test_stop_drops_requests_in_flight(node: RunningNode) -> None:
    node.set_faults(hang=True)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{node.serve_url}/echo", json={}, timeout=10.0)
        except httpx.TransportError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = 200
    while node.stats.total_requests == 0 and deadline:
        deadline -= 1
        threading.Event().wait(0.01)
    node.stop()
    caller.join(5.0)
    assert len(errors) == 1
    assert not isinstance(errors[0], httpx.TimeoutException)


def test_hang_makes_the_client_time_out(node: RunningNode) -> None:
    node.set_faults(endpoint="parking_free_slots", hang=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{node.serve_url}/parking_free_slots",
            json=CAR_PARK,
            headers={"X-Request-ID": "slow-1"},
            timeout=httpx.Timeout(5.0, read=0.3),
        )
    assert node.request_count("slow-1") == 1
    node.clear_faults()
    assert httpx.post(f"{node.serve_url}/parking_free_slots", json=CAR_PARK).status_code == 200


def test_command_line_announces_its_address() -> None:
    command = [sys.executable, "-m", "serving_node", "--port", "0", "--instance-id", "cli-node"]
    # The command is this interpreter and fixed arguments, no outside input.
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)/serve/", line)
            assert match, line
            assert "parking_free_slots" in line
            assert "echo" in line
            health = httpx.get(f"{match.group(1)}/health", timeout=5.0).json()
            assert health["instance_id"] == "cli-node"
        finally:
            proc.terminate()
