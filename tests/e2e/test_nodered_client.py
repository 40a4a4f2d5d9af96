"""Snap4City's existing Node-RED clients, end to end: a real Node-RED runs deploy/nodered's flow,
which sends exactly what `node-red-contrib-snap4city-clearml`'s three nodes send (the password
grant at the real Keycloak's `token/`, then both `/clearml/serve/*` paths of a real ingest) and
applies their success rules; behind ingest, the enqueuer and the ClearML simulator, the inference
router and the demo serving node. Mappings are made through the admin API with an admin's
Keycloak token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlbus.servers.keycloak import KeycloakServer, password_grant
from mlbus.servers.nodered import NodeRedServer
from services.inference_router.app import run as run_router
from services.inference_router.settings import InferenceRouterSettings
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.fixtures import PARKING, UNLIMITED, Worker, running_worker
from tests.support import ThreadedServer, eventually

log = logging.getLogger(__name__)

FEATURES = {
    "capacity": 120,
    "hour": 3,
    "weekday": 2,
    "temperature_c": 10.0,
    "rain_mm": 0.0,
    "event_nearby": False,
}
PARAMS = {"lr": 0.01, "Args/batch_size": 64}
UNKNOWN = "0" * 64
AUTH_FAILED = {"status": "ko", "error": "Authentication failed: Access token is missing or invalid"}


@dataclass(frozen=True)
class Gateway:
    """Ingest trusting the real realm: where Node-RED sends its calls, and a client for the test."""

    url: str
    client: httpx.AsyncClient


@pytest.fixture(scope="module")
def nodered() -> Iterator[NodeRedServer]:
    """One Node-RED for the module (about 2 s to start here), stopped at the end."""
    home = Path(tempfile.mkdtemp(prefix="mlbus-nodered-"))
    server = NodeRedServer(home)
    started = time.monotonic()
    server.start()
    log.info("Node-RED ready in %.1f s", time.monotonic() - started)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def gateway(bus: Bus, keycloak: KeycloakServer) -> AsyncIterator[Gateway]:
    """Ingest over real HTTP, verifying the realm's tokens (issuer, JWKS, mlbus' audience)."""
    settings = IngestSettings(
        **bus.settings(),
        jwks_url=keycloak.jwks_url,
        issuer=keycloak.realm_url,
        audience="mlbus",
        instance="ingest-test",
        **UNLIMITED,  # type: ignore[arg-type]
    )
    server = ThreadedServer(create_app(settings), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield Gateway(server.url, client)
    finally:
        await asyncio.to_thread(server.stop)


def bearer(keycloak: KeycloakServer, user: str) -> dict[str, str]:
    """A real token of the realm (passwords are the user names), as a header."""
    token = password_grant(keycloak.realm_url, user, user)
    return {"Authorization": f"Bearer {token}"}


async def map_task(gateway: Gateway, keycloak: KeycloakServer) -> str:
    """Map the simulator's parking template, as an admin; returns its opaque id."""
    task = await gateway.client.post(
        "/v1/admin/task-mappings",
        headers=bearer(keycloak, "admin"),
        json={"clearml_task_id": PARKING, "default_queue": "gpu-a100", "allowed_queues": ["cpu"]},
    )
    assert task.status_code == 201, task.text
    return str(task.json()["task_id"])


async def map_endpoint(gateway: Gateway, keycloak: KeycloakServer, node: RunningNode) -> str:
    """Map the node's parking endpoint, as an admin; returns the opaque machine id."""
    admin = bearer(keycloak, "admin")
    machine = await gateway.client.post(
        "/v1/admin/serving-machines",
        headers=admin,
        json={"serving_task_id": "7a" * 16, "base_urls": [node.serve_url]},
    )
    assert machine.status_code == 201, machine.text
    machine_id: str = machine.json()["machine_id"]
    endpoint = await gateway.client.post(
        "/v1/admin/endpoint-mappings",
        headers=admin,
        json={"machine_id": machine_id, "endpoint": "parking_free_slots", "timeout_s": 10},
    )
    assert endpoint.status_code == 201, endpoint.text
    return machine_id


async def run_check(
    nodered: NodeRedServer,
    keycloak: KeycloakServer,
    gateway: Gateway,
    *,
    password: str,
    enqueue: dict[str, Any],
    ondemand: dict[str, Any],
) -> dict[str, Any]:
    """POST the check to the flow as alice (with `password`); its JSON summary, which must
    hold no token."""
    body = {
        "keycloak_base_uri": keycloak.realm_url,
        "gateway": gateway.url,
        "username": "alice",
        "password": password,
        "enqueue": enqueue,
        "ondemand": ondemand,
    }
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(nodered.check_url, json=body)
    assert response.status_code == 200, response.text
    assert "eyJ" not in response.text  # no JWT (header, payload or whole) is ever echoed
    summary: dict[str, Any] = response.json()
    log.info("Node-RED check answered: %s", response.text)  # shown with a failing test's logs
    return summary


def router(bus: Bus) -> contextlib.AbstractAsyncContextManager[Worker]:
    """The inference router as a task of the test's event loop."""
    settings = InferenceRouterSettings(
        **bus.settings(), instance="router-test", health_interval_s=0
    )
    return running_worker(run_router, settings)


async def test_a_node_red_flow_enqueues_and_infers_as_the_snap4city_nodes_do(
    bus: Bus,
    keycloak: KeycloakServer,
    gateway: Gateway,
    nodered: NodeRedServer,
    node: RunningNode,
    enqueuer: Worker,
) -> None:
    task_id = await map_task(gateway, keycloak)
    machine_id = await map_endpoint(gateway, keycloak, node)
    call = {"machine_id": machine_id, "endpoint": "parking_free_slots", "input": FEATURES}
    async with router(bus):
        summary = await run_check(
            nodered,
            keycloak,
            gateway,
            password="alice",
            enqueue={"task_id": task_id, "queue_name": "cpu", "input": PARAMS},
            ondemand=call,
        )
    token_url = f"{keycloak.realm_url}/protocol/openid-connect/token/"
    assert summary["token"] == {
        "obtained": True,
        "url": token_url,
        "status_code": 200,
        "error": None,
    }

    enqueued = summary["enqueue"]
    assert enqueued["sent"] == {
        "url": f"{gateway.url}/clearml/serve/enqueue_task",
        "body": {
            "access_token": "<redacted>",
            "task_id": task_id,
            "queue": "cpu",
            "params": PARAMS,
        },
    }
    assert (enqueued["verdict"], enqueued["status_code"]) == ("ok", 202), enqueued
    assert enqueued["body"]["status"] == "queued"
    assert enqueued["body"]["queue"] == "cpu"
    assert enqueued["node_output"] == {"status": "ok", "response": enqueued["body"]}
    rid = enqueued["body"]["request_id"]

    async def moved_on() -> dict[str, Any] | None:
        response = await gateway.client.get(
            f"/v1/requests/{rid}", headers=bearer(keycloak, "alice")
        )
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        return status if status["status"] in ("queued", "running", "completed") else None

    status = await eventually(moved_on, timeout_s=30, what=f"request {rid} to reach ClearML")
    assert (status["task_id"], status["queue"]) == (task_id, "cpu")
    hidden = await gateway.client.get(f"/v1/requests/{rid}", headers=bearer(keycloak, "bob"))
    assert hidden.status_code == 404

    inferred = summary["ondemand"]
    assert inferred["sent"] == {
        "url": f"{gateway.url}/clearml/serve/ondemand",
        "body": {
            "access_token": "<redacted>",
            "machine_id": machine_id,
            "endpoint": "parking_free_slots",
            "params": FEATURES,
        },
    }
    assert (inferred["verdict"], inferred["status_code"]) == ("ok", 200), inferred
    answer = inferred["body"]  # the model's own JSON, unwrapped
    assert set(answer) == {"free_slots", "occupancy", "capacity", "model", "version"}
    assert (answer["model"], answer["capacity"]) == ("parking_free_slots", 120)
    assert 0 <= answer["free_slots"] <= 120
    assert inferred["node_output"] == {"status": "ok", "response": answer}


async def test_the_flow_reports_failures_as_the_snap4city_nodes_do(
    keycloak: KeycloakServer, gateway: Gateway, nodered: NodeRedServer
) -> None:
    enqueue = {"task_id": UNKNOWN, "queue_name": "cpu", "input": PARAMS}
    ondemand = {"machine_id": UNKNOWN, "endpoint": "parking_free_slots", "input": FEATURES}

    refused = await run_check(
        nodered, keycloak, gateway, password="wrong", enqueue=enqueue, ondemand=ondemand
    )
    assert refused["token"]["obtained"] is False
    assert refused["token"]["status_code"] == 400, refused["token"]  # invalid_grant (RFC 6749)
    assert refused["token"]["error"].startswith("invalid_grant"), refused["token"]
    for part in ("enqueue", "ondemand"):  # the nodes stop before calling the gateway
        assert refused[part]["verdict"] == "ko"
        assert refused[part]["called"] is False
        assert refused[part]["node_output"] == AUTH_FAILED

    unknown = await run_check(
        nodered, keycloak, gateway, password="alice", enqueue=enqueue, ondemand=ondemand
    )
    assert unknown["token"]["obtained"] is True
    enqueued, inferred = unknown["enqueue"], unknown["ondemand"]
    assert (enqueued["verdict"], enqueued["status_code"]) == ("ko", 404)
    assert enqueued["node_output"]["error"] == "Unexpected server response code: 404"
    assert enqueued["body"]["code"] == "task_not_found"
    assert (inferred["verdict"], inferred["status_code"]) == ("ko", 404)
    assert inferred["node_output"]["error"] == "Unexpected server response: 404"
    assert inferred["node_output"]["details"]["code"] == "machine_not_found"


async def test_an_enqueue_without_queue_name_goes_to_the_default_queue(
    keycloak: KeycloakServer, gateway: Gateway, nodered: NodeRedServer
) -> None:
    task_id = await map_task(gateway, keycloak)
    enqueue = {"task_id": task_id, "input": PARAMS}  # no queue_name
    summary = await run_check(
        nodered, keycloak, gateway, password="alice", enqueue=enqueue, ondemand={}
    )
    enqueued = summary["enqueue"]
    assert enqueued["sent"]["body"]["queue"] == ""  # what the real node sends here
    assert (enqueued["verdict"], enqueued["status_code"]) == ("ok", 202), enqueued["body"]
    assert enqueued["body"]["queue"] == "gpu-a100"  # "" means the mapping's default queue
