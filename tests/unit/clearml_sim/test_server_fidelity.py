"""Where the simulator behaves as the real server does because the difference could hide a bug
in mlbus: the conditional status change (400/121), the 500-row cap, hyperparameter validation,
queue metrics' shape and hidden queues, the non-responsive watchdog."""

from __future__ import annotations

import asyncio

from clearml_sim import Simulator
from clearml_sim.demo import DEMO_QUEUE_IDS, DEMO_TEMPLATE_IDS
from clearml_sim.testing import FakeClock, InProcessApi

GPU = DEMO_QUEUE_IDS["gpu-a100"]
TEMPLATE = DEMO_TEMPLATE_IDS["parking-occupancy-train"]


async def _clone(api: InProcessApi) -> str:
    return str((await api.ok("tasks.clone", {"task": TEMPLATE}))["id"])


async def test_two_enqueues_of_one_created_task_at_once_one_gets_121(
    api: InProcessApi, sim: Simulator
) -> None:
    tid = await _clone(api)
    sim.faults.configure(latency_ms=30, endpoints=["tasks.enqueue"])
    body = {"task": tid, "queue": GPU}
    (s1, e1), (s2, e2) = await asyncio.gather(
        api.call("tasks.enqueue", body), api.call("tasks.enqueue", body)
    )
    codes = sorted((e["meta"]["result_code"], e["meta"]["result_subcode"]) for e in (e1, e2))
    assert codes == [(200, 0), (400, 121)]
    assert sorted((s1, s2)) == [200, 400]
    assert sim.state.tasks[tid]["status"] == "queued"
    assert list(sim.state.queue_entries[GPU]) == [tid]


async def test_an_enqueue_after_the_other_finished_gets_110_or_706(
    api: InProcessApi, sim: Simulator
) -> None:
    tid = await _clone(api)
    await api.ok("tasks.enqueue", {"task": tid, "queue": GPU})
    meta = await api.err("tasks.enqueue", {"task": tid, "queue": GPU})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 706)


async def test_get_all_without_paging_answers_500_rows_at_most(api: InProcessApi) -> None:
    ids = [await _clone(api) for _ in range(503)]
    rows = (await api.ok("tasks.get_all", {"id": ids, "only_fields": ["id"]}))["tasks"]
    assert len(rows) == 500
    paged = await api.ok("tasks.get_all", {"id": ids, "page": 1, "page_size": 500})
    assert len(paged["tasks"]) == 3


async def test_hyperparameters_with_an_empty_section_or_name_are_400_12(
    api: InProcessApi,
) -> None:
    tid = await _clone(api)
    for item in (
        {"section": "", "name": "lr", "value": "1"},
        {"section": "Args", "name": "", "value": "1"},
        {"name": "lr", "value": "1"},
    ):
        meta = await api.err("tasks.edit_hyper_params", {"task": tid, "hyperparams": [item]})
        assert (meta["result_code"], meta["result_subcode"]) == (400, 12)


async def test_queue_metrics_dates_in_ms_only_filled_buckets_and_hidden_queues(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    glue = (await api.ok("queues.create", {"name": "k8s", "system_tags": ["k8s-glue"]}))["id"]
    start = clock()
    for _ in range(3):  # samples in the first 30 s of a 300 s window only
        sim.agents.tick(clock())
        clock.advance(10)
    clock.advance(270)
    window = {"from_date": start, "to_date": clock(), "interval": 60}
    series = (await api.ok("queues.get_queue_metrics", {**window, "queue_ids": [GPU]}))["queues"]
    dates = series[0]["dates"]
    assert dates
    assert all(d > 10**12 and d % 60_000 == 0 for d in dates)  # epoch ms
    assert len(dates) < 300 // 60  # the empty buckets are left out
    assert len(series[0]["queue_lengths"]) == len(dates)
    hidden = await api.ok("queues.get_queue_metrics", {**window, "queue_ids": [glue]})
    assert hidden["queues"] == []
    shown = await api.ok(
        "queues.get_queue_metrics", {**window, "queue_ids": [glue], "search_hidden": True}
    )
    assert [q["queue"] for q in shown["queues"]] == [glue]
    listed = {q["id"] for q in (await api.ok("queues.get_all", {}))["queues"]}
    assert glue not in listed
    listed = {q["id"] for q in (await api.ok("queues.get_all", {"search_hidden": True}))["queues"]}
    assert glue in listed


async def test_a_task_whose_agent_went_silent_is_stopped_after_two_hours(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    tid = await _clone(api)
    await api.ok(
        "tasks.edit_hyper_params",
        {"task": tid, "hyperparams": [{"section": "Sim", "name": "duration_s", "value": "1e6"}]},
    )
    await api.ok("tasks.enqueue", {"task": tid, "queue": GPU})
    sim.agents.tick(clock())
    task = sim.state.tasks[tid]
    worker = str(task["last_worker"])
    for _ in range(3):  # a live agent's reports keep the task fresh
        clock.advance(3000)
        sim.agents.tick(clock())
    assert task["status"] == "in_progress"
    sim.agents.set_paused(worker, True)
    clock.advance(7199)
    sim.agents.tick(clock())
    assert task["status"] == "in_progress"
    clock.advance(2)
    sim.agents.tick(clock())
    assert task["status"] == "stopped"
    assert task["status_reason"] == task["status_message"] == "Forced stop (non-responsive)"


async def test_a_completed_run_leaves_scalars_artifacts_and_a_model_as_the_server_serves_them(
    api: InProcessApi, sim: Simulator, clock: FakeClock
) -> None:
    tid = await _clone(api)
    await api.ok("tasks.enqueue", {"task": tid, "queue": GPU})
    sim.agents.tick(clock())
    clock.advance(3.1)
    sim.agents.tick(clock())
    assert sim.state.tasks[tid]["status"] == "completed"
    await api.ok(  # a scalar that ends at 0 is left out, as the server's `value:>0` query does
        "events.add_batch",
        {
            "task": tid,
            "type": "training_stats_scalar",
            "metric": "m",
            "variant": "zero",
            "value": 0,
            "iter": 99,
        },
    )
    scalars = await api.ok("events.get_task_latest_scalar_values", {"task": tid})
    [summary] = scalars["metrics"]
    assert summary["name"] == "Summary"
    assert [v["name"] for v in summary["variants"]] == ["accuracy", "loss"]
    assert all(0 < v["last_value"] < 1 for v in summary["variants"])
    assert scalars["last_iter"] == 10
    task = (await api.ok("tasks.get_by_id", {"task": tid}))["task"]
    [artifact] = task["execution"]["artifacts"]
    assert (artifact["key"], artifact["mode"], artifact["type"]) == (
        "predictions",
        "output",
        "custom",
    )
    assert artifact["type_data"]["content_type"] == "text/csv"
    assert artifact["uri"].startswith(sim.state.files_url)
    content = await api.client.get(artifact["uri"].replace(sim.state.files_url, "/files"))
    assert content.status_code == 200
    assert len(content.content) == artifact["content_size"]
    assert content.content.startswith(b"slot,free\n")
    [link] = task["models"]["output"]
    [model] = (await api.ok("models.get_all", {"id": [link["model"]]}))["models"]
    assert (model["name"], model["framework"]) == ("model", "ScikitLearn")
    missing = await api.client.get("/files/no/such/file")
    assert missing.status_code == 404
