"""Simulated agents: pull, run, complete or fail; reports, liveness and stats (fake clock)."""

from __future__ import annotations

from clearml_sim import Simulator
from clearml_sim.demo import DEMO_QUEUE_IDS, DEMO_TEMPLATE_IDS
from clearml_sim.testing import FakeClock, InProcessApi

GPU = DEMO_QUEUE_IDS["gpu-a100"]


async def _run_clone(api: InProcessApi, template: str, queue: str = GPU) -> str:
    new = (await api.ok("tasks.clone", {"task": DEMO_TEMPLATE_IDS[template]}))["id"]
    await api.ok("tasks.enqueue", {"task": new, "queue": queue})
    return str(new)


def _task(sim: Simulator, tid: str) -> dict[str, object]:
    return sim.state.tasks[tid]


async def test_agent_runs_clone_to_completed(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    tid = await _run_clone(api, "parking-occupancy-train")
    sim.agents.tick(clock())
    task = _task(sim, tid)
    assert task["status"] == "in_progress"
    assert task["last_worker"] in ("gpu-box-01:gpu0", "gpu-box-02:gpu0")
    workers = (await api.ok("workers.get_all", {"last_seen": 600}))["workers"]
    busy = [w for w in workers if w["task"]]
    assert [w["task"]["id"] for w in busy] == [tid]
    assert busy[0]["queue"]["name"] == "gpu-a100"
    clock.advance(3.1)
    sim.agents.tick(clock())
    assert task["status"] == "completed"
    assert task["last_iteration"] == 10
    assert task["active_duration"] == 3


async def test_failing_template_fails_with_message(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    tid = await _run_clone(api, "always-fails-demo")
    sim.agents.tick(clock())
    clock.advance(5)
    sim.agents.tick(clock())
    task = _task(sim, tid)
    assert task["status"] == "failed"
    # As the real agent leaves it: its own words; the script's error is in the console log.
    assert task["status_reason"] == "worker execution exit code 1"
    assert task["status_message"] == f"Changed by clearml-agent {task['last_worker']}"
    log = await api.ok("events.get_task_log", {"task": tid, "batch_size": 5})
    assert log["events"][0]["msg"] == "Process failed, exit code 1"
    assert "RuntimeError: CUDA out of memory" in log["events"][1]["msg"]


async def test_stop_running_task_via_api(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    tid = await _run_clone(api, "traffic-flow-forecast")
    sim.agents.tick(clock())
    data = await api.ok("tasks.stop", {"task": tid})
    assert data["fields"] == {"status_message": "stopping"}
    sim.agents.tick(clock())
    assert _task(sim, tid)["status"] == "stopped"


async def test_one_slot_per_agent_and_fifo(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    tids = [await _run_clone(api, "parking-occupancy-train") for _ in range(3)]
    sim.agents.tick(clock())
    statuses = [_task(sim, t)["status"] for t in tids]
    assert statuses == ["in_progress", "in_progress", "queued"]  # two a100 agents


async def test_stopped_agent_drops_out_of_workers(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    sim.agents.set_paused("t4-box-01:gpu0", paused=True)
    clock.advance(120)
    sim.agents.tick(clock())
    ids = {w["id"] for w in (await api.ok("workers.get_all", {"last_seen": 60}))["workers"]}
    assert ids == {"gpu-box-01:gpu0", "gpu-box-02:gpu0"}
    tid = await _run_clone(api, "parking-occupancy-train", DEMO_QUEUE_IDS["gpu-t4"])
    sim.agents.tick(clock())
    assert _task(sim, tid)["status"] == "queued"
    sim.agents.set_paused("t4-box-01:gpu0", paused=False)
    sim.agents.tick(clock())
    assert _task(sim, tid)["status"] == "in_progress"


async def test_worker_stats_and_activity(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    start = clock()
    await _run_clone(api, "traffic-flow-forecast")
    for _ in range(60):
        sim.agents.tick(clock())
        clock.advance(1)
    body = {
        "worker_ids": ["gpu-box-01:gpu0"],
        "from_date": start,
        "to_date": clock(),
        "interval": 10,
        "items": [
            {"key": "gpu_usage", "aggregation": "max"},
            {"key": "gpu_memory_used", "category": "max"},
        ],
        "split_by_variant": True,
    }
    data = await api.ok("workers.get_stats", body)
    (worker,) = data["workers"]
    metrics = {(m["metric"], m.get("variant")): m for m in worker["metrics"]}
    assert set(metrics) == {
        ("gpu_usage", "0"),
        ("gpu_usage", "1"),
        ("gpu_memory_used", "0"),
        ("gpu_memory_used", "1"),
    }
    usage = metrics[("gpu_usage", "0")]
    assert usage["stats"][0]["aggregation"] == "max"
    assert metrics[("gpu_memory_used", "0")]["stats"][0]["aggregation"] == "avg"
    assert usage["dates"][0] % 40_000 == 0  # epoch ms, interval clamped to 40 s
    assert max(usage["stats"][0]["values"]) > 80  # busy GPU
    report = await api.ok(
        "workers.get_activity_report", {"from_date": start, "to_date": clock(), "interval": 40}
    )
    assert max(report["total"]["counts"]) == 3
    assert max(report["active"]["counts"]) == 1
    meta = await api.err("workers.get_stats", {**body, "from_date": clock(), "to_date": start})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 16)


async def test_external_worker_reports(api: InProcessApi, clock: FakeClock) -> None:
    await api.ok("workers.register", {"worker": "ext:0", "queues": [GPU]})
    await api.ok(
        "workers.status_report",
        {"worker": "ext:0", "timestamp": int(clock() * 1000), "machine_stats": {"cpu_usage": [5]}},
    )
    workers = {w["id"]: w for w in (await api.ok("workers.get_all", {}))["workers"]}
    assert workers["ext:0"]["queues"][0]["name"] == "gpu-a100"
    assert workers["ext:0"]["task"] is None
    await api.ok("workers.unregister", {"worker": "ext:0"})
    assert "ext:0" not in {w["id"] for w in (await api.ok("workers.get_all", {}))["workers"]}


async def test_agent_protocol_via_get_next_task(api: InProcessApi) -> None:
    tid = await _run_clone(api, "parking-occupancy-train", DEMO_QUEUE_IDS["cpu"])
    data = await api.ok("queues.get_next_task", {"queue": DEMO_QUEUE_IDS["cpu"]})
    assert data["entry"]["task"] == tid
    assert await api.ok("queues.get_next_task", {"queue": DEMO_QUEUE_IDS["cpu"]}) == {}
    await api.ok("tasks.started", {"task": tid, "force": True})
    data = await api.ok("tasks.dequeue", {"task": tid, "new_status": "in_progress"})
    assert data["fields"]["status"] == "in_progress"
    await api.ok("tasks.completed", {"task": tid})
