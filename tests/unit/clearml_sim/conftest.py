"""Fixtures: a demo simulator on a fake clock, called in-process (no sockets, no agent loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clearml_sim import SimConfig, Simulator
from clearml_sim.testing import FakeClock, InProcessApi


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(SimConfig(task_duration_s=3.0, report_interval_s=5.0), clock=clock)


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[InProcessApi]:
    client = InProcessApi(sim)
    yield client
    await client.aclose()


@pytest.fixture
def client(api: InProcessApi) -> httpx.AsyncClient:
    """The raw httpx client, for header- and body-level checks."""
    return api.client
