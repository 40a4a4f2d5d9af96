"""What the fault tests share: ingest over real HTTP, the workers, the mappings, the burst."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from clearml_sim.testing import SimServer
from mlbus.faultload import Burst
from services.inference_router.app import run as run_router
from services.inference_router.settings import InferenceRouterSettings
from services.ingest.app import create_app
from services.logger.app import run as run_logger
from services.logger.settings import LoggerSettings
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.fixtures import (
    PARKING,
    enqueuer_settings,
    ingest_settings,
    running_enqueuer,
    running_worker,
)
from tests.support import Issuer, ThreadedServer

FEATURES = {
    "capacity": 120,
    "hour": 3,
    "weekday": 2,
    "temperature_c": 10.0,
    "rain_mm": 0.0,
    "event_nearby": False,
}
#: The endpoint's timeout: an on-demand call is answered within it (and ingest's 1 s grace).
ONDEMAND_TIMEOUT_S = 5.0


@dataclass
class Rig:
    """Ingest (in a thread) with its client, the enqueuer and the router (tasks of the test's
    loop), and the opaque ids the burst uses."""

    client: httpx.AsyncClient
    issuer: Issuer
    publish_timeout_s: float
    url: str
    task_id: str = ""
    machine_id: str = ""

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.token('admin', ['RootAdmin'])}"}

    async def map(self, node: RunningNode) -> None:
        """Map the simulator's parking template and the demo node's endpoint."""
        task = await self.client.post(
            "/v1/admin/task-mappings",
            json={"clearml_task_id": PARKING, "default_queue": "gpu-a100"},
            headers=self.admin(),
        )
        assert task.status_code == 201, task.text
        self.task_id = task.json()["task_id"]
        machine = await self.client.post(
            "/v1/admin/serving-machines",
            json={"serving_task_id": "7a" * 16, "base_urls": [node.serve_url]},
            headers=self.admin(),
        )
        assert machine.status_code == 201, machine.text
        self.machine_id = machine.json()["machine_id"]
        endpoint = await self.client.post(
            "/v1/admin/endpoint-mappings",
            json={
                "machine_id": self.machine_id,
                "endpoint": "parking_free_slots",
                "timeout_s": ONDEMAND_TIMEOUT_S,
            },
            headers=self.admin(),
        )
        assert endpoint.status_code == 201, endpoint.text

    def burst(self) -> Burst:
        return Burst(
            self.client,
            self.issuer.token(),
            task_id=self.task_id,
            machine_id=self.machine_id,
            endpoint="parking_free_slots",
            features=FEATURES,
            enqueue_bound_s=self.publish_timeout_s,
            ondemand_bound_s=ONDEMAND_TIMEOUT_S + 1.0,
        )


def logger_settings(bus: Bus, retry_attempts: int) -> LoggerSettings:
    return LoggerSettings(
        **bus.settings(), instance="logger-faults", retry_attempts=retry_attempts, retry_cap_s=0.2
    )


@contextlib.asynccontextmanager
async def rig(
    bus: Bus,
    issuer: Issuer,
    sim: SimServer,
    node: RunningNode,
    *,
    logger: bool = False,
    retry_attempts: int = 3,
    **ingest: Any,
) -> AsyncIterator[Rig]:
    """Ingest, the enqueuer and the router running (and the logger, when asked), the mappings
    made. A worker that dies fails the test when the rig closes. `retry_attempts`: the workers'
    retry bound for one message."""
    settings = ingest_settings(bus, issuer, **ingest)
    server = ThreadedServer(create_app(settings), "ingest")
    await asyncio.to_thread(server.start)
    router = InferenceRouterSettings(
        **bus.settings(), instance="router-faults", health_interval_s=0
    )
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=15) as client,
            running_enqueuer(enqueuer_settings(bus, sim, retry_attempts=retry_attempts)),
            running_worker(run_router, router),
            running_worker(run_logger, logger_settings(bus, retry_attempts))
            if logger
            else contextlib.nullcontext(),
        ):
            ready = Rig(client, issuer, settings.publish_timeout_s, server.url)
            await ready.map(node)
            yield ready
    finally:
        await asyncio.to_thread(server.stop)
