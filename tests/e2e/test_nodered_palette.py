"""The Node-RED palette (`clients/node-red`, node-red-contrib-mlbus) end to end: its `npm pack`
tarball installed into a clean Node-RED 4.1.15 user directory, a flow built from its nodes
deployed through the admin API, against the real stack: Keycloak (the password grant), ingest,
Kafka, the enqueuer and the ClearML simulator, the monitor, the notifier, the inference router
and the demo model, and a simulated GPU agent. What the flow's outputs produce is posted to a
small collector of the test's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clearml_sim.testing import SimServer, run_simulator
from mlbus.servers.keycloak import KeycloakServer
from mlbus.servers.nodered_palette import PaletteNodeRed, pack
from mlbus.servers.process import free_port
from services.agent.app import run as run_agent
from services.agent.settings import AgentSettings
from services.enqueuer.app import run as run_enqueuer
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.e2e.test_enqueue_lifecycle import running_monitor
from tests.e2e.test_nodered_client import FEATURES, Gateway, map_endpoint, map_task, router
from tests.fixtures import (
    UNLIMITED,
    Worker,
    enqueuer_settings,
    monitor_settings,
    running_worker,
)
from tests.integration.test_notifier import notifier, notifier_settings
from tests.support import ThreadedServer, eventually

log = logging.getLogger(__name__)
NODE_TYPES = {
    "mlbus-server",
    "mlbus enqueue",
    "mlbus ondemand",
    "mlbus notifications",
    "mlbus resources",
}


class Collector:
    """What the flow posts: run ends and notifications, in arrival order."""

    def __init__(self) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {"run-end": [], "notification": []}

        async def take(request: Request) -> JSONResponse:
            self.got[request.path_params["what"]].append(await request.json())
            return JSONResponse({"ok": True})

        self.server = ThreadedServer(
            Starlette(routes=[Route("/{what}", take, methods=["POST"])]), "collector"
        )


def ingest_settings(bus: Bus, keycloak: KeycloakServer) -> IngestSettings:
    """Ingest trusting the real realm (issuer, JWKS, mlbus' audience)."""
    return IngestSettings(
        **bus.settings(),
        jwks_url=keycloak.jwks_url,
        issuer=keycloak.realm_url,
        audience="mlbus",
        instance="ingest-test",
        **UNLIMITED,  # type: ignore[arg-type]
    )


@pytest.fixture
async def gateway(bus: Bus, keycloak: KeycloakServer) -> AsyncIterator[Gateway]:
    """Ingest over real HTTP, where the flow's nodes call."""
    server = ThreadedServer(create_app(ingest_settings(bus, keycloak)), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield Gateway(server.url, client)
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
def tarball() -> Iterator[Path]:
    """The palette as `npm pack` makes it."""
    folder = Path(tempfile.mkdtemp(prefix="mlbus-palette-pack-"))
    try:
        yield pack(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    found.server.start()
    try:
        yield found
    finally:
        found.server.stop()


@pytest.fixture
def nodered(tarball: Path, collector: Collector) -> Iterator[PaletteNodeRed]:
    """A clean Node-RED user directory with the tarball installed, Node-RED started on it."""
    home = Path(tempfile.mkdtemp(prefix="mlbus-palette-"))
    server = PaletteNodeRed(home, tarball, env={"MLBUS_E2E_COLLECTOR": collector.server.url})
    server.install()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        log.info("Node-RED said:\n%s", server.log()[-6000:])
        shutil.rmtree(home, ignore_errors=True)


def server_node(node_id: str, gateway: str, keycloak: KeycloakServer, user: str) -> dict[str, Any]:
    """An mlbus-server config node signing in as `user` (credentials inline, as the editor
    deploys them; Node-RED keeps them in its encrypted credentials file)."""
    return {
        "id": node_id,
        "type": "mlbus-server",
        "name": user,
        "url": gateway,
        "tokenUrl": f"{keycloak.realm_url}/protocol/openid-connect/token",
        "clientId": "nodered-iotedge",
        "grant": "password",
        "sweepS": 300,
        "credentials": {"username": user, "password": user},
    }


def post_to(what: str, node_id: str) -> list[dict[str, Any]]:
    """A function node that sends msg.payload to the collector, and the http request node."""
    code = (
        f"msg.url = env.get('MLBUS_E2E_COLLECTOR') + '/{what}';\n"
        "msg.payload = {request_id: msg.request_id, status: msg.status, topic: msg.topic, "
        "body: msg.payload};\nreturn msg;"
    )
    return [
        {
            "id": f"{node_id}.fn",
            "type": "function",
            "z": "tab",
            "name": f"to collector /{what}",
            "func": code,
            "outputs": 1,
            "wires": [[f"{node_id}.post"]],
        },
        {
            "id": f"{node_id}.post",
            "type": "http request",
            "z": "tab",
            "method": "POST",
            "ret": "obj",
            "url": "",
            "wires": [[]],
        },
    ]


def http_route(node_id: str, path: str, target: str) -> list[dict[str, Any]]:
    """`POST path` → a function that moves the body's fields onto `msg` → `target`."""
    code = (
        "const body = msg.payload;\n"
        "for (const k of ['task_id', 'queue_name', 'machine_id', 'endpoint']) {\n"
        "  if (body[k] !== undefined) msg[k] = body[k];\n"
        "}\n"
        "msg.payload = body.input;\nreturn msg;"
    )
    return [
        {
            "id": node_id,
            "type": "http in",
            "z": "tab",
            "url": path,
            "method": "post",
            "wires": [[f"{node_id}.fn"]],
        },
        {
            "id": f"{node_id}.fn",
            "type": "function",
            "z": "tab",
            "func": code,
            "outputs": 1,
            "wires": [[target]],
        },
    ]


def palette_flow(gateway: str, keycloak: KeycloakServer) -> list[dict[str, Any]]:
    """Enqueue (output 1 answers the HTTP call, output 2 goes to the collector), on-demand (its
    answer, or what the Catch node got), and the operator's notifications."""
    reply = {"id": "reply", "type": "http response", "z": "tab", "wires": []}
    failed = (
        "msg.statusCode = 500;\n"
        "msg.payload = {code: msg.error.code, message: msg.error.message, "
        "status: msg.statusCode};\nreturn msg;"
    )
    return [
        {"id": "tab", "type": "tab", "label": "mlbus palette e2e"},
        server_node("srv.alice", gateway, keycloak, "alice"),
        server_node("srv.operator", gateway, keycloak, "operator"),
        *http_route("in.enqueue", "/e2e/enqueue", "enqueue"),
        {
            "id": "enqueue",
            "type": "mlbus enqueue",
            "z": "tab",
            "server": "srv.alice",
            "task_id": "",
            "queue_name": "",
            "input": "payload",
            "inputType": "msg",
            "wires": [["reply"], ["end.fn"]],
        },
        *post_to("run-end", "end"),
        *http_route("in.ondemand", "/e2e/ondemand", "ondemand"),
        {
            "id": "ondemand",
            "type": "mlbus ondemand",
            "z": "tab",
            "server": "srv.alice",
            "machine_id": "",
            "endpoint": "",
            "version": "",
            "input": "payload",
            "inputType": "msg",
            "wires": [["reply"]],
        },
        {
            "id": "catcher",
            "type": "catch",
            "z": "tab",
            "scope": ["ondemand", "enqueue"],
            "uncaught": False,
            "wires": [["failed"]],
        },
        {
            "id": "failed",
            "type": "function",
            "z": "tab",
            "func": failed.replace("status: msg.statusCode", "status: msg.statusCode || 0"),
            "outputs": 1,
            "wires": [["reply.err"]],
        },
        {"id": "reply.err", "type": "http response", "z": "tab", "statusCode": "", "wires": []},
        reply,
        {
            "id": "alerts",
            "type": "mlbus notifications",
            "z": "tab",
            "server": "srv.operator",
            "kinds": "machine_offline",
            "severity": "info",
            "subject": "e2e-gb*",
            "wires": [["alert.fn"]],
        },
        *post_to("notification", "alert"),
    ]


async def call(nodered: PaletteNodeRed, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{nodered.url}{path}", params=None, json=body)


async def ended(collector: Collector, rid: str, timeout_s: float) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return next((e for e in collector.got["run-end"] if e["request_id"] == rid), None)

    return await eventually(found, timeout_s=timeout_s, what=f"run {rid}'s end on output 2")


@contextlib.asynccontextmanager
async def cluster(bus: Bus, sim: SimServer) -> AsyncIterator[None]:
    """The monitor (a run's status from ClearML) and the notifier (notifications)."""
    async with running_monitor(monitor_settings(bus, sim)), notifier(notifier_settings(bus)):
        yield


def test_the_packed_palette_installs_into_a_clean_user_dir_and_lists_its_nodes(
    nodered: PaletteNodeRed,
) -> None:
    sets = [s for s in nodered.nodes() if s["module"] == "node-red-contrib-mlbus"]
    assert {t for s in sets for t in s["types"]} == NODE_TYPES
    assert all(s["enabled"] and s.get("err") is None for s in sets), sets
    installed = nodered.user_dir / "node_modules" / "node-red-contrib-mlbus"
    assert (installed / "examples").is_dir()
    assert not (installed / "test").exists()  # the tarball holds the palette, not its tests


@pytest.mark.timeout(600)  # Keycloak's start counts, and on two busy cores it can take minutes
async def test_a_flow_of_the_palette_follows_a_run_calls_the_model_and_hears_an_alert(
    bus: Bus,
    keycloak: KeycloakServer,
    gateway: Gateway,
    nodered: PaletteNodeRed,
    collector: Collector,
    sim: SimServer,
    node: RunningNode,
    enqueuer: Worker,
) -> None:
    task_id = await map_task(gateway, keycloak)
    machine_id = await map_endpoint(gateway, keycloak, node)
    nodered.deploy(palette_flow(gateway.url, keycloak))
    log.info("flow deployed")
    async with cluster(bus, sim), router(bus):
        queued = await call(nodered, "/e2e/enqueue", {"task_id": task_id, "input": {"lr": 0.1}})
        assert queued.status_code == 200, queued.text
        first = queued.json()
        assert (first["status"], first["queue"]) == ("queued", "gpu-a100"), first  # its default
        log.info("queued: %s", first)
        end = await ended(collector, first["request_id"], 60)
        assert end["status"] == "completed", end
        timeline = end["body"]
        assert timeline["request_id"] == first["request_id"]
        assert [t["status"] for t in timeline["timeline"]][-1] == "completed"
        assert {"accepted", "queued", "completed"} <= {t["status"] for t in timeline["timeline"]}

        answered = await call(
            nodered,
            "/e2e/ondemand",
            {"machine_id": machine_id, "endpoint": "parking_free_slots", "input": FEATURES},
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["model"] == "parking_free_slots"
        refused = await call(
            nodered,
            "/e2e/ondemand",
            {"machine_id": "0" * 64, "endpoint": "parking_free_slots", "input": FEATURES},
        )
        assert refused.status_code == 500, refused.text
        assert refused.json()["code"] == "machine_not_found"

        log.info("the model answered through the flow; now the agent")
        agent = AgentSettings(
            **bus.settings(), machine_id="e2e-gb1", interval_s=0.5, simulate=1, seed=1
        )
        async with running_worker(run_agent, agent):
            await asyncio.sleep(2.0)  # a few heartbeats: the notifier knows the machine
        stopped = time.monotonic()

        async def alert() -> dict[str, Any] | None:
            return next(iter(collector.got["notification"]), None)

        told = await eventually(alert, timeout_s=30, what="machine_offline in the flow")
        log.info(
            "offline told in the flow %.1f s after the agent stopped", time.monotonic() - stopped
        )
        assert told["topic"] == "machine_offline"
        assert told["body"]["subject"] == "e2e-gb1"
        assert told["body"]["status"] == "firing"


@pytest.mark.timeout(600)
async def test_a_run_is_followed_across_a_gateway_restart_and_a_node_red_restart(
    bus: Bus,
    keycloak: KeycloakServer,
    nodered: PaletteNodeRed,
    collector: Collector,
) -> None:
    settings = ingest_settings(bus, keycloak)
    port = free_port()

    def ingest() -> ThreadedServer:
        return ThreadedServer(create_app(settings), "ingest", port=port)

    first = ingest()
    await asyncio.to_thread(first.start)
    with run_simulator(task_duration_s=6.0, agent_tick_s=0.05) as slow:
        async with httpx.AsyncClient(base_url=first.url, timeout=15) as client:
            task_id = await map_task(Gateway(first.url, client), keycloak)
        nodered.deploy(palette_flow(first.url, keycloak))
        async with (
            cluster(bus, slow),
            running_worker(run_enqueuer, enqueuer_settings(bus, slow, instance="enqueuer-slow")),
        ):
            queued = await call(nodered, "/e2e/enqueue", {"task_id": task_id, "input": {}})
            assert queued.status_code == 200, queued.text
            rid = queued.json()["request_id"]
            # both go down while the run is in flight, and come back on the same addresses
            await asyncio.to_thread(nodered.stop)
            await asyncio.to_thread(first.stop)
            second = ingest()
            await asyncio.to_thread(second.start)
            try:
                await asyncio.to_thread(nodered.start)
                end = await ended(collector, rid, 90)
            finally:
                await asyncio.to_thread(second.stop)
    assert end["status"] == "completed", end
    assert end["body"]["timeline"][-1]["status"] == "completed"
    assert [e["request_id"] for e in collector.got["run-end"]] == [rid]  # once


#: Runs one Node-RED follows at once in the bounded test (MLBUS_PALETTE_RUNS; 1,000 was run by
#: hand for the figure in the README, the default keeps `make test` short).
MANY_RUNS = int(os.environ.get("MLBUS_PALETTE_RUNS", "200"))


def gateway_connections(nodered: PaletteNodeRed, gateway_url: str) -> int:
    """Node-RED's open TCP connections to the gateway now."""
    port = int(gateway_url.rsplit(":", 1)[1])
    assert nodered.child is not None
    assert nodered.child.proc is not None
    process = psutil.Process(nodered.child.proc.pid)
    return sum(
        1
        for c in process.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@pytest.mark.timeout(900)
async def test_many_runs_in_flight_are_followed_on_one_connection(
    bus: Bus,
    keycloak: KeycloakServer,
    gateway: Gateway,
    nodered: PaletteNodeRed,
    collector: Collector,
) -> None:
    task_id = await map_task(gateway, keycloak)
    nodered.deploy(palette_flow(gateway.url, keycloak))
    # runs take 0.3 s on 4 simulated GPU slots: they queue up, so most are in flight at once
    with run_simulator(task_duration_s=0.3, agent_tick_s=0.05) as sim:
        async with (
            cluster(bus, sim),
            running_worker(run_enqueuer, enqueuer_settings(bus, sim, instance="enqueuer-many")),
        ):
            started = time.monotonic()
            limit = asyncio.Semaphore(32)

            async def enqueue() -> str:
                async with limit:
                    answer = await call(nodered, "/e2e/enqueue", {"task_id": task_id, "input": {}})
                assert answer.status_code == 200, answer.text
                return str(answer.json()["request_id"])

            rids = set(await asyncio.gather(*(enqueue() for _ in range(MANY_RUNS))))
            accepted_s = time.monotonic() - started
            in_flight = len(rids) - len(collector.got["run-end"])
            connections = gateway_connections(nodered, gateway.url)

            async def all_ended() -> bool:
                return len(collector.got["run-end"]) >= len(rids)

            await eventually(all_ended, timeout_s=600, what=f"{len(rids)} run ends")
            total_s = time.monotonic() - started
            idle = await asyncio.to_thread(gateway_connections, nodered, gateway.url)
    ends = collector.got["run-end"]
    assert len(rids) == MANY_RUNS
    assert sorted(e["request_id"] for e in ends) == sorted(rids)  # each once
    assert all(e["status"] == "completed" for e in ends)
    log.info(
        "many runs: %d accepted in %.1f s, %d in flight then on %d connections (%d after), "
        "all ended after %.1f s",
        len(rids),
        accepted_s,
        in_flight,
        connections,
        idle,
        total_s,
    )
    assert in_flight >= MANY_RUNS // 2
    # Following costs the one notification stream; the calls (enqueues, one status read per
    # end) share a pool of at most 32 kept-alive connections, however many runs are in flight.
    # A socket the pool is replacing still reads ESTABLISHED until the gateway closes its end
    # (seen: 35 once), so a few more may show; one per run in flight would be hundreds.
    assert connections <= 33 + 4, connections
    assert idle <= 4
