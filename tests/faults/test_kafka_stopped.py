"""The Kafka broker stopped for 10 s in a burst of enqueues and on-demand calls, then started
again on the same port and data.

While it is away, ingest answers 503 `bus_unavailable` within the request's bound (never a
hang past it, never a 500); every enqueue answered 202 is cloned once after the restart; no
request id is cloned or sent to the model twice; the workers rejoin on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from clearml_sim.testing import SimServer
from mlbus.faultload import account, clones_per_request
from mlbus.servers.outage import Outage
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.faults.conftest import Below
from tests.faults.rig import FEATURES, Rig, rig
from tests.support import Issuer, eventually

AWAY_S = 10.0


async def served(rig: Rig, path: str, body: Mapping[str, object], status: int) -> bool:
    response = await rig.client.post(
        path, json=body, headers={"Authorization": f"Bearer {rig.issuer.token()}"}
    )
    return response.status_code == status


async def test_kafka_stopped_mid_burst_503_then_every_accepted_request_carried_once(
    below: Below, bus: Bus, issuer: Issuer, sim: SimServer, node: RunningNode
) -> None:
    async with rig(bus, issuer, sim, node) as ready, httpx.AsyncClient() as control:
        enqueue = {"task_id": ready.task_id, "input": {"lr": 0.1}}
        burst = ready.burst()
        await eventually(lambda: served(ready, "/v1/enqueue", enqueue, 202), what="warm enqueue")
        stop = asyncio.Event()
        sending = asyncio.create_task(burst.run(3.0, stop))
        await asyncio.sleep(1.0)  # some requests before the fault
        outage = Outage(below.kafka, "stop")
        await asyncio.to_thread(outage.begin)
        await asyncio.sleep(AWAY_S)
        await asyncio.to_thread(outage.end)
        # the workers rejoin by themselves: requests sent after the restart are carried
        await eventually(
            lambda: served(ready, "/v1/ondemand", burst_body(ready), 200),
            timeout_s=60,
            what="an on-demand answer after the restart",
        )
        stop.set()
        await sending
        accepted = burst.ids("enqueue", 202)

        async def all_cloned() -> dict[str, int] | None:
            clones = await clones_per_request(control, sim.url)
            return clones if accepted <= clones.keys() else None

        clones = await eventually(all_cloned, timeout_s=90, what="every 202 cloned")
        calls = {rid: node.request_count(rid) for rid in burst.ids("ondemand")}
    report = account(burst, clones, calls)
    away = [o for o in burst.outcomes if outage.began_at <= o.sent_at <= outage.ended_at]
    # while it was away, the answer was the 503 of the one shape, for both kinds
    assert {o.label for o in away if o.kind == "enqueue"} == {"503 bus_unavailable"}, report
    assert "503 bus_unavailable" in {o.label for o in away if o.kind == "ondemand"}, report
    # an on-demand call published before the broker went and delivered after its deadline is
    # told so (504 `expired`); nothing else is an answer here
    allowed = {
        "enqueue": {"202", "503 bus_unavailable"},
        "ondemand": {"200", "503 bus_unavailable", "504 expired", "504 model_timeout"},
    }
    for kind in ("enqueue", "ondemand"):
        counts = report[kind]
        assert set(counts["answered"]) <= allowed[kind], counts
        assert counts["unanswered"] == 0, counts
        assert counts["late"] == 0, counts
        assert counts["lost"] == 0, counts
        assert counts["duplicated"] == 0, counts
    assert report["enqueue"]["answered"].get("202", 0) >= 3, report  # before and after


def burst_body(ready: Rig) -> dict[str, object]:
    return {"machine_id": ready.machine_id, "endpoint": "parking_free_slots", "input": FEATURES}
