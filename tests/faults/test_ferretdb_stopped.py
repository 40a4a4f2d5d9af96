"""FerretDB (the MongoDB of the local stack) stopped for 10 s in a burst of enqueues and
on-demand calls, then started again on the same port and data.

No service dies; ingest's readiness says `mongodb: down` while it is away, and says so within a
probe's patience; what was in flight waits or is redelivered: every enqueue answered 202 is
cloned once and its log says queued; the logger's read models catch up with every request.
The on-demand path does not stand on MongoDB at all: a call made while it is away is answered
200 within its deadline (routes come from the router's memory, the call's log goes on the bus)
and its log reaches `ondemand_logs` (the logger writes it) once the store is back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from clearml_sim.testing import SimServer
from mlbus.faultload import SLACK_S, account, clones_per_request
from mlbus.servers.outage import Outage
from schemas.collections import ENQUEUE_LOGS, ONDEMAND_LOGS, VIEW_ENQUEUE, VIEW_ONDEMAND
from schemas.status import SETTLED
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.faults.conftest import Below
from tests.faults.rig import rig
from tests.support import Issuer, eventually

AWAY_S = 10.0
CARRIED = {"queued", "running", "completed"}
#: What a Kubernetes probe waits for an answer by default is 1 s; ours is a little kinder.
PROBE_S = 3.0


async def readiness(client: httpx.AsyncClient, url: str) -> tuple[int, dict[str, Any], float]:
    began = time.monotonic()
    response = await client.get(f"{url}/readyz", timeout=30)
    return response.status_code, response.json(), time.monotonic() - began


async def test_ferretdb_stopped_mid_burst_nothing_dies_nothing_lost_read_models_catch_up(
    below: Below, bus: Bus, issuer: Issuer, sim: SimServer, node: RunningNode, mongo_db: Any
) -> None:
    async with (
        # a message's retry bound (two tries: ~5 s) is shorter than the outage: a message in
        # flight must wait for the store, not be failed for its absence
        rig(bus, issuer, sim, node, logger=True, retry_attempts=2) as ready,
        httpx.AsyncClient() as control,
    ):
        burst = ready.burst()
        status, _, _ = await readiness(control, ready.url)
        assert status == 200
        stop = asyncio.Event()
        sending = asyncio.create_task(burst.run(3.0, stop))
        await asyncio.sleep(1.0)  # some requests before the fault
        outage = Outage(below.mongo, "stop")
        await asyncio.to_thread(outage.begin)
        status, probe, took = await readiness(control, ready.url)
        await asyncio.sleep(max(0.0, AWAY_S - (time.monotonic() - outage.began_at)))
        await asyncio.to_thread(outage.end)
        await eventually(
            lambda: _ready(control, ready.url), timeout_s=30, what="ready again after the restart"
        )
        await asyncio.sleep(2.0)  # some requests after it
        stop.set()
        await sending
        accepted = burst.ids("enqueue", 202)
        answered = burst.ids("ondemand", 200)

        async def settled() -> list[dict[str, Any]] | None:
            found = mongo_db[ENQUEUE_LOGS].find(
                {"_id": {"$in": sorted(accepted)}, "status": {"$in": sorted(SETTLED)}}
            )
            docs: list[dict[str, Any]] = await found.to_list()
            return docs if len(docs) == len(accepted) else None

        async def folded() -> bool:
            counts = [
                await mongo_db[VIEW_ENQUEUE].count_documents({"_id": {"$in": sorted(accepted)}}),
                await mongo_db[ONDEMAND_LOGS].count_documents({"_id": {"$in": sorted(answered)}}),
                await mongo_db[VIEW_ONDEMAND].count_documents({"_id": {"$in": sorted(answered)}}),
            ]
            return counts == [len(accepted), len(answered), len(answered)]

        logs = await eventually(settled, timeout_s=90, what="every 202 settled in its log")
        await eventually(folded, timeout_s=60, what="the read models caught up")
        clones = await clones_per_request(control, sim.url)
        calls = {rid: node.request_count(rid) for rid in burst.ids("ondemand")}
    # the rig closed: a worker that had died would have failed the test there
    failed = [(d["_id"], d.get("error")) for d in logs if d["status"] not in CARRIED]
    assert not failed, failed
    assert status == 503, probe
    assert probe["checks"]["mongodb"] == "down", probe
    assert took < PROBE_S, f"readiness took {took:.1f} s to answer"
    report = account(burst, clones, calls)
    for kind in ("enqueue", "ondemand"):
        counts = report[kind]
        assert counts["unanswered"] == 0, counts
        assert counts["late"] == 0, counts
        assert counts["lost"] == 0, counts
        assert counts["duplicated"] == 0, counts
        assert not any(label.startswith("500") for label in counts["answered"]), counts
    assert report["enqueue"]["answered"].get("202", 0) > 0, report
    # the on-demand calls made while the store was away: all answered 200 within their deadline
    # (the model was up the whole time), and their logs were among those waited for above
    away = [o for o in burst.of("ondemand") if outage.began_at <= o.sent_at <= outage.ended_at]
    assert len(away) >= AWAY_S, f"only {len(away)} on-demand calls during the outage"
    not_ok = [
        (o.label, round(o.elapsed_s, 2))
        for o in away
        if o.status != 200 or o.elapsed_s > o.bound_s + SLACK_S
    ]
    assert not not_ok, f"{len(not_ok)} of {len(away)} calls during the outage: {not_ok}"
    assert {o.request_id for o in away} <= answered


async def _ready(client: httpx.AsyncClient, url: str) -> bool:
    status, _, _ = await readiness(client, url)
    return status == 200
