"""`mlbus up --replicas 2` runs two copies of each service that scales: here the same Fleet on
the test's topics, each copy its own process, on its own port, and ready; each console copy
reads through its own ingest copy."""

from __future__ import annotations

import httpx

from clearml_sim.testing import SimServer
from mlbus.stack import SINGLE, WORKERS
from tests.conftest import Bus
from tests.copies import fleet_env, running_fleet, start
from tests.support import Issuer

SCALED = ("ingest", "console", *(name for name, _, _ in WORKERS if name not in SINGLE))


async def test_two_copies_of_every_service_run_and_are_ready(
    bus: Bus, sim: SimServer, issuer: Issuer
) -> None:
    async with running_fleet(fleet_env(bus, sim, issuer)) as fleet:
        for service in SCALED:
            await start(fleet, service, 2)
        async with httpx.AsyncClient(timeout=5) as client:
            for service in SCALED:
                copies = fleet.copies[service]
                assert [p.name for p in copies] == [service, f"{service}-2"]
                pids = {p.child.proc.pid for p in copies if p.child and p.child.proc}
                assert len(pids) == 2, service
                for proc in copies:
                    assert proc.child is not None
                    assert proc.child.alive(), proc.name
                    port = next(iter(proc.env.values()))
                    answer = await client.get(f"http://127.0.0.1:{port}/readyz")
                    assert answer.status_code == 200, (proc.name, answer.text)
            ingests = [p.env["MLBUS_INGEST_PORT"] for p in fleet.copies["ingest"]]
            consoles = [p.env["MLBUS_CONSOLE_INGEST_URL"] for p in fleet.copies["console"]]
            assert consoles == [f"http://127.0.0.1:{port}" for port in ingests]
            # A crash of one copy (SIGKILL) leaves the other serving.
            killed = fleet.kill("ingest", 0)
            assert killed.child is not None
            assert not killed.child.alive()
            other = next(iter(fleet.copies["ingest"][1].env.values()))
            answer = await client.get(f"http://127.0.0.1:{other}/readyz")
            assert answer.status_code == 200
