"""Fixtures that run mlbus services against the session's real Kafka and FerretDB (shared by the
integration and e2e tiers through their conftest)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from clearml_sim.demo import DEMO_TEMPLATE_IDS
from clearml_sim.testing import SimServer, run_simulator
from services.enqueuer.app import run as run_enqueuer
from services.enqueuer.settings import EnqueuerSettings
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.monitor.settings import MonitorSettings
from serving_node.testing import RunningNode, run_node
from tests.conftest import Bus
from tests.support import Issuer, ThreadedServer

PARKING = DEMO_TEMPLATE_IDS["parking-occupancy-train"]


@pytest.fixture
def node() -> Iterator[RunningNode]:
    """The demo serving node (ClearML Serving URL scheme) in a thread."""
    with run_node() as running:
        yield running


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with run_simulator(task_duration_s=0.5, agent_tick_s=0.05) as server:
        yield server


#: Load tests send hundreds of requests as one user: quotas out of their way, except in the
#: tests of quotas, which set their own.
UNLIMITED = {
    "rate_quotas": {"enqueue": {"user": 10**9}, "ondemand": {"user": 10**9}},
    "task_quotas": {"user": 10**9},
}


def ingest_settings(bus: Bus, issuer: Issuer, **overrides: object) -> IngestSettings:
    return IngestSettings(
        **bus.settings(),
        jwks_url=issuer.jwks_url,
        issuer=issuer.issuer,
        instance="ingest-test",
        **{**UNLIMITED, **overrides},  # type: ignore[arg-type]
    )


def monitor_settings(bus: Bus, sim: SimServer, **overrides: Any) -> MonitorSettings:
    """The monitor against the simulator, polling fast, with short retries."""
    fields: dict[str, Any] = {
        **bus.settings(),
        "clearml_api_host": sim.url,
        "clearml_access_key": sim.access_key,
        "clearml_secret_key": sim.secret_key,
        "instance": "monitor-test",
        # One monitor at a time in these tests: no election to wait for before it polls resources
        # (the election has tests of its own: tests/integration/test_monitor_copies.py).
        "elect": False,
        "poll_s": 0.2,
        "retry_attempts": 3,
        "retry_cap_s": 0.2,
    }
    return MonitorSettings(**{**fields, **overrides})


def enqueuer_settings(bus: Bus, sim: SimServer, **overrides: Any) -> EnqueuerSettings:
    fields: dict[str, Any] = {
        **bus.settings(),
        "clearml_api_host": sim.url,
        "clearml_access_key": sim.access_key,
        "clearml_secret_key": sim.secret_key,
        "instance": "enqueuer-test",
        "retry_attempts": 3,
        "retry_cap_s": 0.2,
    }
    return EnqueuerSettings(**{**fields, **overrides})


@pytest.fixture
async def ingest(bus: Bus, issuer: Issuer) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest over real HTTP; the client's base URL points at it."""
    server = ThreadedServer(create_app(ingest_settings(bus, issuer)), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)


@dataclass
class Worker:
    """A worker running as a task in the test's event loop."""

    stop: asyncio.Event
    task: asyncio.Task[None]

    async def halt(self) -> None:
        """Graceful stop, as on SIGTERM: the batch in hand finishes and is committed."""
        self.stop.set()
        await asyncio.wait_for(self.task, 30)

    async def kill(self) -> None:
        """Abrupt stop, as a crash: nothing more is committed."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def running_worker(
    run: Callable[[Any, asyncio.Event], Coroutine[Any, Any, None]], settings: Any
) -> AsyncIterator[Worker]:
    """Run a worker's `run(settings, stop)` as a task; a worker that died fails the test
    (unless the test killed it)."""
    stop = asyncio.Event()
    worker = Worker(stop, asyncio.create_task(run(settings, stop)))
    try:
        yield worker
    finally:
        if not worker.task.done():
            await worker.halt()
        if not worker.task.cancelled():
            worker.task.result()


def running_enqueuer(settings: EnqueuerSettings) -> contextlib.AbstractAsyncContextManager[Worker]:
    """The enqueuer as a task of the test's event loop."""
    return running_worker(run_enqueuer, settings)


@pytest.fixture
async def enqueuer(bus: Bus, sim: SimServer) -> AsyncIterator[Worker]:
    async with running_enqueuer(enqueuer_settings(bus, sim)) as worker:
        yield worker


@pytest.fixture
async def parking_task_id(ingest: httpx.AsyncClient, issuer: Issuer) -> str:
    """Map the simulator's parking template; returns its opaque id."""
    response = await ingest.post(
        "/v1/admin/task-mappings?force=true",  # "nowhere" does not exist, on purpose
        json={
            "clearml_task_id": PARKING,
            "default_queue": "gpu-a100",
            "allowed_queues": ["gpu-t4", "cpu", "nowhere"],
            "description": "parking",
        },
        headers={"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])
