"""A second enqueuer joining mid-burst (a rebalance) makes no request cloned twice: the old
owner finishes and commits its batch before its partitions move."""

from __future__ import annotations

from typing import Any

import httpx

from clearml_sim.testing import SimServer
from tests.conftest import Bus
from tests.fixtures import enqueuer_settings, running_enqueuer
from tests.integration.test_enqueue_faults import produce, request
from tests.support import eventually

BURST = 120


async def test_a_rebalance_mid_burst_clones_each_request_once(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    envs = [request() for _ in range(BURST)]
    async with httpx.AsyncClient(base_url=sim.url) as control:
        await control.post("/_sim/faults", json={"latency_ms": 40})  # slow cluster: long batches
        settings = enqueuer_settings(bus, sim, concurrency=8)
        async with running_enqueuer(settings):
            await produce(bus, *((e.id.encode(), e.model_dump_json().encode()) for e in envs))
            logs = mongo_db["enqueue_logs"]
            await eventually(lambda: logs.count_documents({}), what="the burst under way")
            async with running_enqueuer(settings.model_copy(update={"instance": "second"})):

                async def all_queued() -> bool:
                    return await logs.count_documents({"status": "queued"}) == BURST

                await eventually(all_queued, timeout_s=90, what="every request queued")
        await control.delete("/_sim/faults")
    tags = [tag for t in sim.state.tasks.values() for tag in t.get("tags", [])]
    doubled = [e.id for e in envs if tags.count(f"mlbus-request:{e.id}") != 1]
    assert doubled == []
