"""Injected faults: 500/0 (never 503), outages, per-endpoint plans, the control API."""

from __future__ import annotations

import httpx
import pytest

from clearml_sim import Simulator
from clearml_sim.faults import Faults
from clearml_sim.testing import FakeClock, InProcessApi


async def test_error_rate_one_gives_500_general_error(api: InProcessApi, sim: Simulator) -> None:
    sim.faults.configure(error_rate=1.0)
    status, env = await api.call("queues.get_all")
    assert status == 500
    assert (env["meta"]["result_code"], env["meta"]["result_subcode"]) == (500, 0)
    assert env["meta"]["result_msg"] == "General server error (simulated fault)"


async def test_per_endpoint_faults(api: InProcessApi, sim: Simulator) -> None:
    sim.faults.configure(error_rate=1.0, endpoints=["tasks.enqueue", "workers.*"])
    assert (await api.call("queues.get_all"))[0] == 200
    assert (await api.call("tasks.enqueue", {"task": "x"}))[0] == 500
    assert (await api.call("workers.get_all"))[0] == 500


async def test_outage_window_ends(api: InProcessApi, sim: Simulator, clock: FakeClock) -> None:
    sim.faults.configure(outage_s=30)
    status, env = await api.call("auth.login", version="")
    assert status == 500
    assert "simulated outage" in env["meta"]["result_msg"]
    clock.advance(31)
    assert (await api.call("auth.login", version=""))[0] == 200


def test_fault_rates_are_statistical_and_never_503() -> None:
    faults = Faults(seed=7)
    faults.configure(error_rate=0.3)
    codes = [err.code for _, err in (faults.decide("tasks.clone") for _ in range(2000)) if err]
    assert set(codes) == {500}
    assert 450 < len(codes) < 750


def test_invalid_plan_is_rejected() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Faults().configure(error_rate=1.5)


async def test_control_api_faults(client: httpx.AsyncClient, api: InProcessApi) -> None:
    resp = await client.post("/_sim/faults", json={"error_rate": 1, "latency_ms": 1})
    assert resp.status_code == 200
    assert resp.json()["error_rate"] == 1.0
    assert (await api.call("tasks.get_all"))[0] == 500
    assert (await client.get("/_sim/health")).status_code == 200  # control API is never faulted
    assert (await client.delete("/_sim/faults")).json()["error_rate"] == 0.0
    assert (await api.call("tasks.get_all"))[0] == 200
    bad = await client.post("/_sim/faults", json={"error_rate": 3})
    assert bad.status_code == 400
