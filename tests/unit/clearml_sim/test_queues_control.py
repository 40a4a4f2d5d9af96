"""Queue endpoints and the ``/_sim/`` control API."""

from __future__ import annotations

import httpx

from clearml_sim import Simulator
from clearml_sim.demo import DEMO_QUEUE_IDS, DEMO_TEMPLATE_IDS
from clearml_sim.testing import FakeClock, InProcessApi

GPU = DEMO_QUEUE_IDS["gpu-a100"]


async def test_queue_lookups(api: InProcessApi) -> None:
    data = await api.ok("queues.get_all", {"name": "^gpu\\-a100$", "only_fields": ["id", "name"]})
    assert data["queues"] == [{"id": GPU, "name": "gpu-a100"}]
    meta = await api.err("queues.get_by_id", {"queue": "gpu-a100"})  # the SDK tries names as ids
    assert (meta["result_code"], meta["result_subcode"]) == (400, 701)
    assert (await api.ok("queues.get_by_id", {"queue": GPU}))["queue"]["entries"] == []
    assert (await api.ok("queues.get_default"))["id"] == DEMO_QUEUE_IDS["default"]
    created = await api.ok("queues.create", {"name": "extra"})
    assert (await api.ok("queues.get_all", {"id": [created["id"]]}))["queues"][0]["name"] == "extra"


async def test_get_all_ex_and_metrics(api: InProcessApi, sim: Simulator, clock: FakeClock) -> None:
    start = clock()
    new = await api.ok("tasks.clone", {"task": DEMO_TEMPLATE_IDS["parking-occupancy-train"]})
    await api.ok("tasks.enqueue", {"task": new["id"], "queue": DEMO_QUEUE_IDS["cpu"]})
    for _ in range(12):
        sim.agents.tick(clock())
        clock.advance(10)
    data = await api.ok("queues.get_all_ex", {"name": "cpu"})
    assert data["queues"][0]["entries"][0]["task"]["id"] == new["id"]
    gpu = (await api.ok("queues.get_all_ex", {"id": [GPU]}))["queues"][0]
    assert {w["name"] for w in gpu["workers"]} == {"gpu-box-01:gpu0", "gpu-box-02:gpu0"}
    metrics = await api.ok(
        "queues.get_queue_metrics",
        {
            "from_date": start,
            "to_date": clock(),
            "interval": 40,
            "queue_ids": [DEMO_QUEUE_IDS["cpu"]],
        },
    )
    series = metrics["queues"][0]
    assert series["queue"] == DEMO_QUEUE_IDS["cpu"]
    assert max(series["queue_lengths"]) == 1
    assert max(series["avg_waiting_times"]) > 0


async def test_control_inspection_and_agents(
    client: httpx.AsyncClient, api: InProcessApi, sim: Simulator
) -> None:
    new = await api.ok(
        "tasks.clone",
        {"task": DEMO_TEMPLATE_IDS["parking-occupancy-train"], "new_task_tags": ["req-9"]},
    )
    tasks = (await client.get("/_sim/tasks", params={"tag": "req-9"})).json()["tasks"]
    assert [t["id"] for t in tasks] == [new["id"]]
    assert tasks[0]["hyperparams"]["General"]["lr"]["value"] == "0.001"
    assert (await client.get(f"/_sim/tasks/{new['id']}")).json()["task"]["status"] == "created"
    resp = await client.post(
        "/_sim/agents", json={"name": "cpu-box:0", "queues": ["cpu"], "gpus": 0, "duration_s": 1}
    )
    assert resp.status_code == 201
    assert (await client.post("/_sim/agents/cpu-box:0/stop")).json()["stopped"] is True
    assert (await client.post("/_sim/agents/cpu-box:0/start")).json()["stopped"] is False
    assert (await client.post("/_sim/agents/nobody/stop")).status_code == 404
    assert (await client.get("/_sim/nothing")).status_code == 404


async def test_control_reset_reseeds_stable_ids(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.configure(error_rate=1.0)
    await client.post("/_sim/agents", json={"name": "x:0", "queues": ["cpu"]})
    health = (await client.post("/_sim/reset")).json()
    assert (health["tasks"], health["queues"], health["agents"]) == (3, 4, 3)
    assert health["faults"]["error_rate"] == 0.0
    assert set(DEMO_TEMPLATE_IDS.values()) == set(sim.state.tasks)
    empty = (await client.post("/_sim/reset", json={"demo": False})).json()
    assert (empty["tasks"], empty["queues"]) == (0, 0)
