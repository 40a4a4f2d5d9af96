"""SIGTERM in the middle of a burst loses nothing: every accepted request ends up logged in
MongoDB exactly once, with exactly one ClearML clone, after the worker restarts."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from clearml_sim.testing import SimServer
from mlbus.servers.process import Child
from tests.conftest import Bus
from tests.support import Issuer, eventually

BURST = 150


def enqueuer_process(bus: Bus, sim: SimServer, log: Path) -> Child:
    env = {
        **bus.env(),
        "MLBUS_ENQUEUER_CLEARML_API_HOST": sim.url,
        "MLBUS_ENQUEUER_CLEARML_ACCESS_KEY": sim.access_key,
        "MLBUS_ENQUEUER_CLEARML_SECRET_KEY": sim.secret_key,
    }
    return Child("enqueuer", [sys.executable, "-m", "services.enqueuer"], log, env)


async def test_sigterm_during_a_burst_loses_no_request(
    bus: Bus,
    sim: SimServer,
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    parking_task_id: str,
    mongo_db: Any,
) -> None:
    log = Path(tempfile.mkdtemp()) / "enqueuer.log"
    first = enqueuer_process(bus, sim, log)
    first.start()
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    body = {"task_id": parking_task_id, "input": {"lr": 0.1}}
    accepted: list[str] = []

    async def send() -> None:
        response = await ingest.post("/v1/enqueue", json=body, headers=headers)
        assert response.status_code == 202, response.text
        accepted.append(response.json()["request_id"])

    async def burst() -> None:
        for _ in range(BURST // 10):
            await asyncio.gather(*(send() for _ in range(10)))

    sender = asyncio.create_task(burst())
    logs = mongo_db["enqueue_logs"]
    await eventually(lambda: logs.count_documents({}), what="the first requests handled")
    code = await asyncio.to_thread(first.stop)  # SIGTERM while requests keep arriving
    assert code == 0, first.tail()
    await sender
    assert len(accepted) == BURST

    second = enqueuer_process(bus, sim, log)
    second.start()
    try:

        async def all_queued() -> bool:
            return await logs.count_documents({"status": "queued"}) == BURST

        await eventually(all_queued, timeout_s=60, what=f"{BURST} requests queued")
    finally:
        await asyncio.to_thread(second.stop)
    ids = {doc["_id"] async for doc in logs.find({}, {"_id": 1})}
    assert ids == set(accepted)
    tags = [tag for t in sim.state.tasks.values() for tag in t.get("tags", [])]
    per_request = [tags.count(f"mlbus-request:{rid}") for rid in accepted]
    assert per_request == [1] * BURST
