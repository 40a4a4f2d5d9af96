"""Task endpoints: clone, hyperparameters, edit, enqueue/dequeue errors, get_all (§3, §4)."""

from __future__ import annotations

import pytest

from clearml_sim.demo import DEMO_QUEUE_IDS, DEMO_TEMPLATE_IDS
from clearml_sim.testing import FakeClock, InProcessApi

TEMPLATE = DEMO_TEMPLATE_IDS["parking-occupancy-train"]
GPU = DEMO_QUEUE_IDS["gpu-a100"]


async def _clone(api: InProcessApi, **extra: object) -> str:
    data = await api.ok("tasks.clone", {"task": TEMPLATE, "new_task_name": "sweep 1", **extra})
    return str(data["id"])


async def test_clone_copies_template_and_resets_run_state(api: InProcessApi) -> None:
    new = await _clone(api, new_task_tags=["mlbus", "req-1"])
    task = (await api.ok("tasks.get_by_id", {"task": new}))["task"]
    src = (await api.ok("tasks.get_by_id", {"task": TEMPLATE}))["task"]
    assert task["status"] == "created"
    assert task["name"] == "sweep 1"
    assert task["parent"] == TEMPLATE
    assert task["tags"] == ["mlbus", "req-1"]
    assert task["hyperparams"] == src["hyperparams"]
    assert task["started"] is None
    assert task["execution"]["queue"] is None
    assert task["project"] == src["project"]


async def test_clone_unknown_task_is_400_101(api: InProcessApi) -> None:
    meta = await api.err("tasks.clone", {"task": "nope"})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 101)
    assert meta["result_msg"].startswith("Invalid task id: id=nope, company=")


async def test_clone_with_hyperparams_and_new_project(api: InProcessApi) -> None:
    hp = {"General": {"lr": {"section": "General", "name": "lr", "value": "0.3"}}}
    data = await api.ok(
        "tasks.clone",
        {"task": TEMPLATE, "new_task_hyperparams": hp, "new_project_name": "sweeps"},
    )
    assert data["new_project"]["name"] == "sweeps"
    params = await api.ok("tasks.get_hyper_params", {"tasks": [data["id"]]})
    assert params["params"][0]["hyperparams"] == [
        {"section": "General", "name": "lr", "value": "0.3", "type": "", "description": ""}
    ]


async def test_edit_hyper_params_merge_and_get(api: InProcessApi) -> None:
    new = await _clone(api)
    hp = [
        {"section": "General", "name": "lr", "value": "0.01", "type": "float"},
        {"section": "Args", "name": "batch_size", "value": 64},
    ]
    assert await api.ok("tasks.edit_hyper_params", {"task": new, "hyperparams": hp}) == {
        "updated": 1
    }
    params = (await api.ok("tasks.get_hyper_params", {"tasks": [new]}))["params"][0]
    values = {(p["section"], p["name"]): p["value"] for p in params["hyperparams"]}
    assert values[("General", "lr")] == "0.01"
    assert values[("Args", "batch_size")] == "64"
    assert values[("General", "epochs")] == "10"  # merged, not replaced


async def test_edit_hyper_params_replace_section(api: InProcessApi) -> None:
    new = await _clone(api)
    hp = [{"section": "General", "name": "lr", "value": "1"}]
    await api.ok(
        "tasks.edit_hyper_params",
        {"task": new, "hyperparams": hp, "replace_hyperparams": "section"},
    )
    task = (await api.ok("tasks.get_by_id", {"task": new}))["task"]
    assert list(task["hyperparams"]["General"]) == ["lr"]
    assert "Args" in task["hyperparams"]


async def test_edit_hyper_params_needs_created(api: InProcessApi) -> None:
    hp = [{"section": "General", "name": "lr", "value": "1"}]
    meta = await api.err("tasks.edit_hyper_params", {"task": TEMPLATE, "hyperparams": hp})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 110)
    assert meta["result_msg"] == "Invalid task status: expected=created, status=completed"
    props = [{"section": "properties", "name": "owner", "value": "ops"}]
    assert await api.ok("tasks.edit_hyper_params", {"task": TEMPLATE, "hyperparams": props})


async def test_edit_force_replaces_hyperparams_dict(api: InProcessApi) -> None:
    new = await _clone(api)
    hp = {"General": {"lr": {"section": "General", "name": "lr", "value": "0.05", "type": "float"}}}
    data = await api.ok("tasks.edit", {"task": new, "force": True, "hyperparams": hp})
    assert data["updated"] == 1
    task = (await api.ok("tasks.get_by_id", {"task": new}))["task"]
    assert task["hyperparams"] == hp  # the SDK's set_parameters replaces the whole dict
    meta = await api.err("tasks.edit", {"task": TEMPLATE, "comment": "x"})
    assert meta["result_subcode"] == 110


async def test_enqueue_and_fields(api: InProcessApi) -> None:
    new = await _clone(api)
    data = await api.ok(
        "tasks.enqueue",
        {
            "task": new,
            "queue": GPU,
            "status_reason": "mlbus",
            "status_message": "req-1",
            "verify_watched_queue": True,
        },
    )
    assert (data["queued"], data["updated"], data["queue_watched"]) == (1, 1, True)
    assert data["fields"]["status"] == "queued"
    assert data["fields"]["enqueue_status"] == "created"
    assert data["fields"]["execution.queue"] == GPU
    assert (await api.ok("queues.get_num_entries", {"queue": GPU}))["num"] == 1
    meta = await api.err("tasks.enqueue", {"task": new, "queue": GPU})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 706)


async def test_enqueue_errors(api: InProcessApi) -> None:
    new = await _clone(api)
    meta = await api.err("tasks.enqueue", {"task": new, "queue": GPU, "queue_name": "gpu-a100"})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 12)
    meta = await api.err("tasks.enqueue", {"task": new, "queue": "no-such-queue"})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 701)
    meta = await api.err("tasks.enqueue", {"task": TEMPLATE, "queue": GPU})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 110)
    assert meta["result_msg"] == (
        "Invalid task status (Invalid status change): current_status=completed, new_status=queued"
    )
    assert meta["error_data"] == {"current_status": "completed", "new_status": "queued"}


async def test_enqueue_by_name_creates_queue_and_cpu_is_unwatched(api: InProcessApi) -> None:
    new = await _clone(api)
    data = await api.ok(
        "tasks.enqueue", {"task": new, "queue_name": "brand-new", "verify_watched_queue": True}
    )
    assert data["queue_watched"] is False
    queues = (await api.ok("queues.get_all", {"name": "^brand\\-new$"}))["queues"]
    assert queues[0]["entries"][0]["task"] == new


async def test_enqueue_without_queue_uses_default(api: InProcessApi) -> None:
    new = await _clone(api)
    data = await api.ok("tasks.enqueue", {"task": new})
    assert data["fields"]["execution.queue"] == DEMO_QUEUE_IDS["default"]


async def test_dequeue(api: InProcessApi) -> None:
    new = await _clone(api)
    await api.ok("tasks.enqueue", {"task": new, "queue": GPU})
    data = await api.ok("tasks.dequeue", {"task": new})
    assert data["dequeued"] == 1
    assert data["fields"]["status"] == "created"
    assert data["fields"]["execution.queue"] is None
    assert (await api.ok("queues.get_num_entries", {"queue": GPU}))["num"] == 0
    assert await api.ok("tasks.dequeue", {"task": TEMPLATE}) == {"updated": 0}


async def test_get_all_nested_projection(api: InProcessApi) -> None:
    new = await _clone(api)
    await api.ok("tasks.enqueue", {"task": new, "queue": GPU, "status_message": "sweep"})
    data = await api.ok(
        "tasks.get_all",
        {
            "id": [new],
            "only_fields": [
                "status",
                "status_message",
                "execution.queue",
                "hyperparams.General.lr.value",
            ],
        },
    )
    assert data["tasks"] == [
        {
            "id": new,
            "status": "queued",
            "status_message": "sweep",
            "execution": {"queue": GPU},
            "hyperparams": {"General": {"lr": {"value": "0.001"}}},
        }
    ]


async def test_get_all_filters(api: InProcessApi, clock: FakeClock) -> None:
    a = await _clone(api, new_task_tags=["mlbus", "a"])
    clock.advance(1)
    b = await _clone(api, new_task_tags=["mlbus", "b"])
    await api.ok("tasks.enqueue", {"task": b, "queue": GPU})

    async def ids(**body: object) -> list[str]:
        tasks = (await api.ok("tasks.get_all", {"only_fields": ["id"], **body}))["tasks"]
        return [t["id"] for t in tasks]

    assert await ids(tags=["mlbus"]) == [a, b]
    assert await ids(tags=["mlbus", "-b"]) == [a]
    assert await ids(tags=["__$all", "mlbus", "b"]) == [b]
    assert await ids(tags=["a", "b"], order_by=["-last_update"]) == [b, a]
    assert await ids(tags=["mlbus"], status=["queued"]) == [b]
    assert await ids(tags=["mlbus"], page=1, page_size=1) == [b]
    assert await ids(name="^sweep", tags=["mlbus"]) == [a, b]
    assert TEMPLATE in await ids(name="parking")
    assert await ids(status=["queued"]) == [b]
    since = "2026-11-26 00:00:00"  # str(datetime) form the SDK's Monitor sends
    assert await ids(tags=["mlbus"], status_changed=[f">{since}"]) == [a, b]
    assert await ids(tags=["mlbus"], status_changed=["<2020-01-01 00:00:00"]) == []


async def test_get_all_bad_regex(api: InProcessApi) -> None:
    meta = await api.err("tasks.get_all", {"name": "("})
    assert (meta["result_code"], meta["result_subcode"]) == (400, 21)


async def test_stop_queued_task_is_immediate(api: InProcessApi) -> None:
    new = await _clone(api)
    await api.ok("tasks.enqueue", {"task": new, "queue": GPU})
    data = await api.ok("tasks.stop", {"task": new})
    assert data["fields"]["status"] == "stopped"
    assert (await api.ok("queues.get_num_entries", {"queue": GPU}))["num"] == 0
    meta = await api.err("tasks.stop", {"task": TEMPLATE})
    assert meta["result_subcode"] == 110


async def test_reset_and_requeue(api: InProcessApi) -> None:
    data = await api.ok("tasks.reset", {"task": TEMPLATE})
    assert data["fields"]["status"] == "created"
    task = (await api.ok("tasks.get_by_id", {"task": TEMPLATE}))["task"]
    assert task["started"] is None
    assert (await api.ok("tasks.enqueue", {"task": TEMPLATE, "queue": GPU}))["queued"] == 1


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [("tasks.started", "in_progress"), ("tasks.failed", "failed"), ("tasks.stopped", "stopped")],
)
async def test_status_endpoints_follow_the_machine(
    api: InProcessApi, endpoint: str, status: str
) -> None:
    new = await _clone(api)
    await api.ok("tasks.enqueue", {"task": new, "queue": GPU})
    if status == "failed":  # queued -> failed is illegal without force
        meta = await api.err(endpoint, {"task": new})
        assert meta["result_subcode"] == 110
        data = await api.ok(endpoint, {"task": new, "force": True})
    else:
        data = await api.ok(endpoint, {"task": new})
    assert data["fields"]["status"] == status
    if status == "in_progress":
        assert data["started"] == 1
