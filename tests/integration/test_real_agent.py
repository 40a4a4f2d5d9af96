"""The real `clearml-agent` (PyPI) against the simulator, behind mlbus: the agent registers and
shows in `/v1/resources` as its queue's worker, pulls the clones mlbus made from
`POST /v1/enqueue`, runs a tiny script task to completed, and a failing one whose requester
sees the script's own error (not the agent's words).

The agent runs as a daemon with `--cpu-only`, no docker, and
`CLEARML_AGENT_SKIP_PIP_VENV_INSTALL` pointing at this interpreter, so it installs nothing and
needs no network; the templates are script tasks whose code is their `script.diff`. Its home
(and so its build folders) is the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearml_sim import queues
from clearml_sim.testing import SimServer, basic_auth, run_simulator
from services.monitor.app import run as run_monitor
from tests.conftest import Bus
from tests.fixtures import Worker, enqueuer_settings, monitor_settings, running_worker
from tests.support import Issuer, eventually

pytestmark = pytest.mark.timeout(240)

QUEUE = "agent-cpu"
WORKER = "agent-box:cpu0"
OK_SCRIPT = "print('training on 3 rows')\nprint('done')\n"
FAILING_SCRIPT = "print('loading the dataset')\nraise ValueError('the dataset has no rows')\n"
AGENT = Path(sys.executable).parent / "clearml-agent"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """The simulator with its demo, and a queue only the real agent listens on."""
    with run_simulator(task_duration_s=0.5, agent_tick_s=0.05) as server:
        queues.create_queue(server.state, QUEUE)  # before the agent starts: it checks its queues
        yield server


async def sim_call(sim: SimServer, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post(
            f"/{endpoint}", json=body, headers={"Authorization": basic_auth(sim.config)}
        )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def script_template(sim: SimServer, name: str, code: str) -> str:
    """A script task as the SDK records a standalone script: no repository, the code in diff."""
    script = {
        "repository": "",
        "branch": "",
        "version_num": "",
        "entry_point": "task.py",
        "working_dir": ".",
        "diff": code,
        "requirements": {},
        "binary": "python3",
    }
    created = await sim_call(
        sim, "tasks.create", {"name": name, "type": "training", "script": script}
    )
    return str(created["id"])


@pytest.fixture
def agent(sim: SimServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`clearml-agent daemon` on QUEUE, its output in tmp_path/agent.log."""
    (tmp_path / "clearml.conf").write_text("")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "CLEARML_CONFIG_FILE": str(tmp_path / "clearml.conf"),
        "CLEARML_API_HOST": sim.url,
        "CLEARML_WEB_HOST": sim.url,
        "CLEARML_FILES_HOST": sim.url,
        "CLEARML_API_ACCESS_KEY": sim.access_key,
        "CLEARML_API_SECRET_KEY": sim.secret_key,
        "CLEARML_WORKER_ID": WORKER,
        "CLEARML_AGENT_SKIP_PIP_VENV_INSTALL": sys.executable,
        "CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL": "1",
    }
    log = (tmp_path / "agent.log").open("wb")
    command = [str(AGENT), "daemon", "--queue", QUEUE, "--cpu-only", "--foreground"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@pytest.fixture
async def monitor(bus: Bus, sim: SimServer) -> AsyncIterator[Worker]:
    settings = monitor_settings(bus, sim, resource_poll_s=0.5)
    async with running_worker(run_monitor, settings) as worker:
        yield worker


@pytest.fixture
async def enqueuer_worker(bus: Bus, sim: SimServer) -> AsyncIterator[Worker]:
    from services.enqueuer.app import run as run_enqueuer

    async with running_worker(run_enqueuer, enqueuer_settings(bus, sim)) as worker:
        yield worker


def auth(issuer: Issuer, user: str = "alice", roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user, roles)}"}


async def mapped(ingest: httpx.AsyncClient, issuer: Issuer, template: str) -> str:
    response = await ingest.post(
        "/v1/admin/task-mappings?force=true",
        json={"clearml_task_id": template, "default_queue": QUEUE, "description": "script"},
        headers=auth(issuer, "admin", ["RootAdmin"]),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


async def ended(ingest: httpx.AsyncClient, issuer: Issuer, rid: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["status"] in ("completed", "failed", "stopped") else None

    return await eventually(probe, timeout_s=120, what=f"request {rid} to end")


def clone_of(sim: SimServer, rid: str) -> dict[str, Any]:
    [clone] = [t for t in list(sim.state.tasks.values()) if f"mlbus-request:{rid}" in t["tags"]]
    return clone


@pytest.mark.usefixtures("enqueuer_worker", "monitor")
async def test_the_real_agent_registers_and_runs_what_mlbus_enqueued(
    sim: SimServer,
    agent: subprocess.Popen[bytes],
    ingest: httpx.AsyncClient,
    issuer: Issuer,
) -> None:
    ok = await mapped(ingest, issuer, await script_template(sim, "tiny script", OK_SCRIPT))
    bad = await mapped(ingest, issuer, await script_template(sim, "failing", FAILING_SCRIPT))

    async def agent_in_resources() -> list[str] | None:
        assert agent.poll() is None, "clearml-agent exited: see agent.log in the test's tmp dir"
        response = await ingest.get("/v1/resources", headers=auth(issuer, "op", ["AreaManager"]))
        assert response.status_code == 200, response.text
        queue = next((q for q in response.json()["queues"] if q["name"] == QUEUE), None)
        return queue["worker_ids"] if queue and queue["worker_ids"] else None

    assert await eventually(agent_in_resources, timeout_s=60, what="the agent") == [WORKER]

    rids = []
    for task_id in (ok, bad):
        response = await ingest.post(
            "/v1/enqueue", json={"task_id": task_id, "input": {}}, headers=auth(issuer)
        )
        assert response.status_code == 202, response.text
        rids.append(response.json()["request_id"])
    done, failed = await asyncio.gather(*(ended(ingest, issuer, rid) for rid in rids))

    assert done["status"] == "completed", done
    assert clone_of(sim, rids[0])["last_worker"] == WORKER
    assert failed["status"] == "failed", failed
    assert clone_of(sim, rids[1])["status_reason"] == "worker execution exit code 1"
    assert "ValueError: the dataset has no rows" in failed["error"]
    assert "clearml-agent" not in failed["error"]
    assert WORKER not in failed["error"]
