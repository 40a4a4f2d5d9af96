"""What a real cluster does to a followed run: the agent's own words on a failed task (the
requester gets the run's error from its console log instead), a task deleted or reset on the
server, and queue metrics that leave hidden queues out unless asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from clearml_sim import queues
from clearml_sim.testing import SimServer
from runtime.clearml import ClearMLClient, ClearMLUnavailable
from schemas.tasks import TaskEventKind
from services.monitor.clearml import ClearML
from services.monitor.lifecycle import run_error, sanitized
from tests.unit.monitor.test_monitor_poller import Rig

AGENT = "Changed by clearml-agent gpu-box-01:gpu0"


@pytest.fixture
def rig() -> Rig:
    return Rig()


def log_event(ts: int, msg: str) -> dict[str, object]:
    return {"timestamp": ts, "type": "log", "msg": msg, "level": "info"}


async def test_a_failed_run_tells_its_own_error_not_the_agents_words(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "failed", AGENT, "worker execution exit code 3")
    rig.clearml.logs["c1"] = [
        log_event(1, "epoch 1/10 loss=0.3"),
        log_event(
            2,
            "Traceback (most recent call last):\n"
            '  File "/home/svc/.clearml/venvs-builds/3.11/task_repository/train.py", line 9\n'
            "RuntimeError: cannot reach s3://10.1.2.3:9000/bucket from /data/set/a.csv",
        ),
        log_event(3, "Process failed, exit code 3"),
    ]
    await rig.poller.tick()
    error = rig.store.docs["r1"]["error"]
    assert error == (
        "The training run failed: RuntimeError: cannot reach <address> from a.csv"
        " (worker execution exit code 3)."
    )
    (event,) = rig.bus.events
    assert event.kind is TaskEventKind.FAILED
    assert event.message == error


async def test_without_a_readable_log_the_agents_words_are_still_left_out(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "failed", AGENT, "worker execution exit code 3")
    rig.clearml.log_down = True
    await rig.poller.tick()
    assert rig.store.docs["r1"]["error"] == "The training run failed: worker execution exit code 3."


def test_the_error_is_the_last_exception_line_else_the_last_line_and_bounded() -> None:
    assert run_error([log_event(1, "ValueError: a\nmore"), log_event(2, "KeyError: 'b'")]) == (
        "KeyError: 'b'"
    )
    assert run_error([log_event(1, "no exception here\nlast words")]) == "last words"
    assert run_error([log_event(1, "Process failed, exit code 1")]) is None
    assert len(sanitized("x" * 1000)) == 300
    assert sanitized("see http://clearml.internal:8081/files/x and 192.168.1.7") == (
        "see <address> and <address>"
    )


async def test_a_task_deleted_on_the_server_ends_its_request_after_some_polls(rig: Rig) -> None:
    rig.follow()  # c1 is never found: deleted
    for _ in range(4):
        await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued"]
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "stopped"]
    assert "no longer exists" in rig.store.docs["r1"]["error"]
    assert rig.bus.kinds() == [TaskEventKind.STOPPED]
    assert len(rig.watch) == 0


async def test_a_task_reset_to_created_ends_its_request_and_a_blip_does_not(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "created")
    for _ in range(4):
        await rig.poller.tick()
    rig.clearml.set("c1", "queued")  # enqueued again in time: the count starts over
    await rig.poller.tick()
    rig.clearml.set("c1", "created")
    for _ in range(4):
        await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued"]
    await rig.poller.tick()
    assert rig.store.timeline("r1") == ["queued", "stopped"]
    assert "was reset" in rig.store.docs["r1"]["error"]


@pytest.fixture
async def served() -> AsyncIterator[SimServer]:
    async with SimServer() as server:
        yield server


async def test_queue_metrics_cover_queues_tagged_k8s_glue(served: SimServer) -> None:
    state = served.state
    glue = queues.create_queue(state, "k8s-a100", system_tags=["k8s-glue"])["id"]
    now = state.clock()
    state.queue_samples[glue].extend([(now - 200, 2, 30.0), (now - 130, 4, 50.0)])
    async with aiohttp.ClientSession() as http:
        clearml = ClearML(ClearMLClient(http, served.url, served.access_key, served.secret_key))
        rows = await clearml.queue_metrics([glue], now, 600, 60)
    [row] = rows
    assert row["queue"] == glue
    assert all(d > 10**12 for d in row["dates"])
    assert sorted(row["queue_lengths"]) == [2.0, 4.0]


def completed_outputs() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """What ClearML answers about a completed run (shapes of the real server)."""
    task = {
        "id": "c1",
        "execution": {
            "artifacts": [
                {
                    "key": "predictions",
                    "type": "custom",
                    "mode": "output",
                    "uri": "http://files.internal:8081/p/t.c1/artifacts/predictions/p.csv",
                    "content_size": 412,
                    "type_data": {"content_type": "text/csv"},
                },
                {"key": "dataset", "type": "custom", "mode": "input", "uri": "s3://x/y"},
            ]
        },
        "models": {"output": [{"name": "model", "model": "m1"}]},
    }
    models = [{"id": "m1", "name": "model", "framework": "PyTorch"}]
    scalars = {
        "metrics": [
            {
                "name": "Summary",
                "variants": [
                    {"name": "accuracy", "last_value": 0.94, "last_10_value": 0.9},
                    {"name": "loss", "last_value": 0.1074, "last_10_value": 0.2},
                ],
            }
        ],
        "last_iter": 10,
    }
    return task, models, scalars


async def test_a_completed_run_carries_its_scalars_artifacts_and_models(rig: Rig) -> None:
    rig.follow()
    rig.clearml.outputs["c1"] = completed_outputs()
    rig.clearml.set("c1", "completed", AGENT, "worker execution done")
    await rig.poller.tick()
    (event,) = rig.bus.events
    assert event.kind is TaskEventKind.COMPLETED
    assert event.results is not None
    assert event.results.scalars == {"Summary/accuracy": 0.94, "Summary/loss": 0.1074}
    assert [(a.name, a.type, a.size) for a in event.results.artifacts] == [
        ("predictions", "text/csv", 412)
    ]
    assert [(m.name, m.type) for m in event.results.models] == [("model", "PyTorch")]
    assert "files.internal" not in event.model_dump_json()  # the address stays internal
    doc = rig.store.docs["r1"]
    assert doc["results"] == event.results
    assert doc["result_uris"] == {
        "predictions": "http://files.internal:8081/p/t.c1/artifacts/predictions/p.csv"
    }


async def test_a_completion_whose_results_cannot_be_read_is_recorded_without(rig: Rig) -> None:
    rig.follow()
    rig.clearml.set("c1", "completed")

    async def down(task_id: str) -> Any:
        raise ClearMLUnavailable("tasks.get_all: HTTP 503")

    rig.clearml.results = down
    await rig.poller.tick()
    (event,) = rig.bus.events
    assert event.kind is TaskEventKind.COMPLETED
    assert event.results is None
    assert rig.store.timeline("r1") == ["queued", "completed"]
