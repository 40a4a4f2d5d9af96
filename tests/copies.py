"""Many copies of mlbus's services as real processes (mlbus.stack.Fleet) on one test's topics and
database: what the tests of `--replicas` and of crashes (SIGKILL) start."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from clearml_sim.testing import SimServer
from mlbus.servers.process import free_port
from mlbus.stack import Fleet
from tests.conftest import Bus
from tests.support import Issuer


def fleet_env(
    bus: Bus, sim: SimServer | None = None, issuer: Issuer | None = None
) -> dict[str, str]:
    """The environment of every copy: the test's bus, the simulator (ClearML), the issuer."""
    env = {**bus.env(), "PYTHONUNBUFFERED": "1", "MLBUS_LOG_LEVEL": "INFO"}
    if sim is not None:
        env |= {
            "MLBUS_CLEARML_API_HOST": sim.url,
            "MLBUS_CLEARML_ACCESS_KEY": sim.access_key,
            "MLBUS_CLEARML_SECRET_KEY": sim.secret_key,
        }
    if issuer is not None:
        env |= {"MLBUS_INGEST_JWKS_URL": issuer.jwks_url, "MLBUS_INGEST_ISSUER": issuer.issuer}
    return env


@contextlib.asynccontextmanager
async def running_fleet(env: dict[str, str]) -> AsyncIterator[Fleet]:
    """A fleet on free ports, its logs in a temporary folder; every copy stopped at the end."""
    logs = Path(tempfile.mkdtemp(prefix="mlbus-fleet-"))
    fleet = Fleet(env, logs, port=lambda _service, _index: free_port())
    try:
        yield fleet
    finally:
        await asyncio.to_thread(fleet.stop)


async def start(
    fleet: Fleet, service: str, copies: int, args: tuple[str, ...] = (), timeout_s: float = 90
) -> None:
    """Start copies of a service off the event loop (the test's servers run in it)."""
    await asyncio.to_thread(fleet.start, service, copies, args, timeout_s)
