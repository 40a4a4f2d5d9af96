"""Contract: the real ``clearml`` SDK (2.1.x) against the simulator, so it cannot drift.

The SDK caches its configuration and session in process-wide state, so every SDK call runs in
one spawned child process per module, configured through ``CLEARML_*`` env vars before it first
imports ``clearml``. The scenarios below are module-level functions the child runs; each call has a
hard deadline (the SDK retries some errors for minutes), and no fault is injected here.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import httpx
import pytest

from clearml_sim.demo import DEMO_QUEUE_IDS, DEMO_TEMPLATE_IDS
from clearml_sim.testing import SimServer, run_simulator

CALL_TIMEOUT_S = 15.0
POLL_S = 0.1
TEMPLATE = DEMO_TEMPLATE_IDS["parking-occupancy-train"]
FAILING = DEMO_TEMPLATE_IDS["always-fails-demo"]


# ---- the child process ------------------------------------------------------------------------


def _serve(conn: Connection, env: dict[str, str]) -> None:
    os.environ.update(env)
    while (msg := conn.recv()) is not None:
        fn, args = msg
        try:
            conn.send((True, fn(*args)))
        except BaseException as exc:  # report everything; the parent decides
            conn.send((False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class SdkProcess:
    """A spawned interpreter holding one configured SDK; runs scenario functions with a deadline."""

    def __init__(self, env: dict[str, str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, env), daemon=True)
        self._proc.start()
        child.close()

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        self._conn.send((fn, args))
        if not self._conn.poll(timeout):
            self.close()
            pytest.fail(f"SDK call {fn.__name__} did not return within {timeout} s")
        ok, value = self._conn.recv()
        if not ok:
            pytest.fail(f"SDK call {fn.__name__} raised:\n{value}")
        return value

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with run_simulator(task_duration_s=0.5, report_interval_s=0.5, agent_tick_s=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(sim: SimServer) -> Iterator[SdkProcess]:
    env = {
        "CLEARML_API_HOST": sim.url,
        "CLEARML_WEB_HOST": sim.url,
        "CLEARML_FILES_HOST": sim.url,
        "CLEARML_API_ACCESS_KEY": sim.access_key,
        "CLEARML_API_SECRET_KEY": sim.secret_key,
        "CLEARML_CONFIG_FILE": os.devnull,  # ignore any clearml.conf on the machine
        "CLEARML_LOG_LEVEL": "WARNING",
    }
    proc = SdkProcess(env)
    yield proc
    proc.close()


# ---- scenarios (run in the child) -------------------------------------------------------------


class _ParseWarnings:
    """Collects the SDK's "Failed parsing" warnings: a field of the wrong type or shape."""

    def __enter__(self) -> list[str]:
        import logging

        self.found: list[str] = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda rec: self.found.append(rec.getMessage())
        logging.getLogger("clearml").addHandler(self.handler)
        return self.found

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.getLogger("clearml").removeHandler(self.handler)


def _client() -> Any:
    from clearml.backend_api.session.client import APIClient

    return APIClient()


def sdk_queue_endpoints(template: str) -> dict[str, Any]:
    with _ParseWarnings() as warnings:
        client = _client()
        full = client.queues.get_all()
        new = client.tasks.clone(task=template, new_task_name="to dequeue").id
        client.tasks.enqueue(task=new, queue_name="cpu")
        queue = client.queues.get_by_id(queue=full[0].id)
        now = int(time.time())
        metrics = client.queues.get_queue_metrics(
            from_date=now - 600, to_date=now, interval=60, queue_ids=[full[0].id]
        )
        dequeued = client.tasks.dequeue(task=new)
        task = client.tasks.get_by_id(task=new)
    return {
        "names": sorted(q.name for q in full),
        "system_tags": {q.name: list(q.system_tags) for q in full},
        "ids": (full[0].id, queue.id, metrics.queues[0].queue),
        "dequeued": (dequeued.dequeued, dequeued.updated),
        "status_after": str(getattr(task.status, "value", task.status)),
        "warnings": [w for w in warnings if "parsing" in w.lower()],
    }


def sdk_apiclient_flow(template: str, queue_name: str) -> dict[str, Any]:
    client = _client()
    src = client.tasks.get_by_id(task=template)
    new = client.tasks.clone(task=template, new_task_name="train (lr sweep 1)").id
    hp = [
        {"section": "General", "name": "lr", "value": "0.01", "type": "float"},
        {"section": "Args", "name": "batch_size", "value": "64"},
    ]
    edited = client.tasks.edit_hyper_params(task=new, hyperparams=hp)
    params = client.tasks.get_hyper_params(tasks=[new])
    queues = client.queues.get_all(name=f"^{queue_name}$", only_fields=["id", "name"])
    enq = client.tasks.enqueue(
        queue=queues[0].id, task=new, status_reason="orchestrator", status_message="sweep"
    )
    got = client.tasks.get_all(
        id=[new], only_fields=["id", "status", "status_message", "execution.queue", "last_worker"]
    )
    return {
        "src_name": src.name,
        "new": new,
        "edited": edited.updated,
        "params": {
            f"{p['section']}/{p['name']}": p["value"] for p in params.params[0]["hyperparams"]
        },
        "queues": [(q.id, q.name) for q in queues],
        "enqueue": (enq.queued, enq.updated, enq.fields["execution.queue"]),
        "status": str(got[0].status.value if hasattr(got[0].status, "value") else got[0].status),
        "status_message": got[0].status_message,
        "execution_queue": got[0].execution.queue,
        "num": client.queues.get_num_entries(queue=queues[0].id).num,
        "default": client.queues.get_default().name,
    }


def sdk_workers(worker: str) -> dict[str, Any]:
    client = _client()
    workers = client.workers.get_all(last_seen=600)
    now = int(time.time())
    stats = client.workers.get_stats(
        worker_ids=[worker],
        from_date=now - 600,
        to_date=now + 60,
        interval=60,
        items=[{"key": "gpu_usage", "category": "avg"}, {"key": "gpu_memory_used"}],
        split_by_variant=True,
    )
    report = client.workers.get_activity_report(from_date=now - 600, to_date=now + 60, interval=60)
    first = stats.workers[0]
    return {
        "ids": sorted(w.id for w in workers),
        "queues": {w.id: sorted(q.name for q in w.queues) for w in workers},
        "stats_worker": first.worker,
        "metrics": sorted((m.metric, m.variant) for m in first.metrics),
        "aggregations": sorted(
            {
                str(getattr(s.aggregation, "value", s.aggregation))
                for m in first.metrics
                for s in m.stats
            }
        ),
        "dates_len": len(first.metrics[0].dates),
        "active_total": max(report.total.counts),
    }


def sdk_task_flow(template: str, queue_name: str) -> dict[str, Any]:
    with _ParseWarnings() as warnings:
        out = _task_flow(template, queue_name)
    return {**out, "warnings": [w for w in warnings if "parsing" in w.lower()]}


def _task_flow(template: str, queue_name: str) -> dict[str, Any]:
    from clearml import Task

    task = Task.get_task(task_id=template)
    clone = Task.clone(source_task=task, name="sdk clone")
    clone.set_parameters({"General/lr": 0.05, "Args/batch_size": 128})
    params = clone.get_parameters()
    Task.enqueue(clone, queue_name=queue_name)
    deadline = time.monotonic() + 10
    status = clone.get_status()
    while status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(POLL_S)
        status = clone.get_status()
    clone.reload()
    return {
        "name": task.name,
        "template_status": task.get_status(),
        "clone_id": clone.id,
        "clone_parent": clone.data.parent,
        "params": params,
        "final": status,
        "last_worker": clone.data.last_worker,
    }


def sdk_enqueue_completed(template: str, queue_id: str) -> dict[str, Any]:
    from clearml import Task
    from clearml.backend_api.session.client import APIError

    out: dict[str, Any] = {}
    try:
        _client().tasks.enqueue(task=template, queue=queue_id, verify_watched_queue=False)
    except APIError as exc:
        out["api"] = (exc.code, exc.subcode, exc.message)
    try:
        Task.enqueue(Task.get_task(task_id=template), queue_name="gpu-a100")
    except Exception as exc:  # the SDK raises its SendError here
        out["task"] = (type(exc).__name__, str(exc))
    return out


def sdk_failing_template(template: str, queue_name: str) -> dict[str, Any]:
    from clearml import Task

    clone = Task.clone(source_task=template, name="will fail")
    Task.enqueue(clone, queue_name=queue_name)
    deadline = time.monotonic() + 10
    while clone.get_status() != "failed" and time.monotonic() < deadline:
        time.sleep(POLL_S)
    clone.reload()
    return {
        "status": clone.get_status(),
        "reason": clone.data.status_reason,
        "message": clone.data.status_message,
        "console": clone.get_reported_console_output(number_of_reports=5),
    }


def sdk_exactly_once_calls(template: str, queue_id: str, tag: str) -> dict[str, Any]:
    """The calls exactly-once rests on, with the bodies services/enqueuer/clearml.py sends: a
    clone tagged with its request id, the search by that tag (what a redelivery does before it
    clones again), and enqueueing the clone twice (the second is 400/706, "already queued")."""
    from clearml.backend_api.session.client import APIError

    client = _client()
    found_before = client.tasks.get_all(
        tags=[tag], only_fields=["id", "status"], search_hidden=True
    )
    new = client.tasks.clone(
        task=template,
        new_task_name="parking · tagged",
        new_task_parent=template,
        new_task_tags=["mlbus", tag, "mlbus-user:alice"],
    ).id
    found = client.tasks.get_all(tags=[tag], only_fields=["id", "status"], search_hidden=True)
    others = client.tasks.get_all(tags=[tag + "x"], only_fields=["id"], search_hidden=True)
    clone = client.tasks.get_by_id(task=new)
    first = client.tasks.enqueue(
        task=new,
        queue=queue_id,
        status_reason="mlbus",
        status_message="request r1",
        verify_watched_queue=True,
    )
    again: tuple[int, int] | None = None
    try:
        client.tasks.enqueue(task=new, queue=queue_id, verify_watched_queue=True)
    except APIError as exc:
        again = (exc.code, exc.subcode)
    after = client.tasks.get_all(tags=[tag], only_fields=["id", "status"], search_hidden=True)
    return {
        "new": new,
        "before": [t.id for t in found_before],
        "found": [(t.id, str(getattr(t.status, "value", t.status))) for t in found],
        "others": [t.id for t in others],
        "tags": sorted(clone.tags),
        "parent": clone.parent,
        "status": str(getattr(clone.status, "value", clone.status)),
        "first": (first.queued, first.updated, getattr(first, "queue_watched", None)),
        "again": again,
        "after": [(t.id, str(getattr(t.status, "value", t.status))) for t in after],
    }


def sdk_bad_login(url: str) -> str:
    from clearml.backend_api import Session

    try:
        Session(api_key="wrong", secret_key="wrong", host=url)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


# ---- tests ------------------------------------------------------------------------------------


def test_apiclient_clone_edit_enqueue(sdk: SdkProcess, sim: SimServer) -> None:
    out = sdk.run(sdk_apiclient_flow, TEMPLATE, "cpu")  # no agent on cpu: stays queued
    assert out["src_name"] == "parking-occupancy-train"
    assert out["edited"] == 1
    assert out["params"]["General/lr"] == "0.01"
    assert out["params"]["Args/batch_size"] == "64"
    assert out["params"]["General/epochs"] == "10"
    assert out["queues"] == [(DEMO_QUEUE_IDS["cpu"], "cpu")]
    assert out["enqueue"] == (1, 1, DEMO_QUEUE_IDS["cpu"])
    assert (out["status"], out["status_message"]) == ("queued", "sweep")
    assert out["execution_queue"] == DEMO_QUEUE_IDS["cpu"]
    assert out["num"] == 1
    assert out["default"] == "default"
    assert sim.state.tasks[out["new"]]["parent"] == TEMPLATE


def test_queue_endpoints_and_dequeue(sdk: SdkProcess, sim: SimServer) -> None:
    # A queue is in the metrics only with samples in a complete bucket of the window, as on the
    # server: give every queue one, two minutes old.
    now = time.time()
    for samples in list(sim.state.queue_samples.values()):
        samples.append((now - 120, 1, 5.0))
    out = sdk.run(sdk_queue_endpoints, TEMPLATE)
    assert out["names"] == ["cpu", "default", "gpu-a100", "gpu-t4"]
    assert out["system_tags"]["default"] == ["default"]
    first, by_id, in_metrics = out["ids"]
    assert first == by_id == in_metrics
    assert out["dequeued"] == (1, 1)
    assert out["status_after"] == "created"
    assert out["warnings"] == []


def test_workers_and_stats(sdk: SdkProcess) -> None:
    out = sdk.run(sdk_workers, "gpu-box-01:gpu0")
    assert out["ids"] == ["gpu-box-01:gpu0", "gpu-box-02:gpu0", "t4-box-01:gpu0"]
    assert out["queues"]["t4-box-01:gpu0"] == ["default", "gpu-t4"]
    assert out["stats_worker"] == "gpu-box-01:gpu0"
    assert out["metrics"] == [
        ("gpu_memory_used", "0"),
        ("gpu_memory_used", "1"),
        ("gpu_usage", "0"),
        ("gpu_usage", "1"),
    ]
    assert out["aggregations"] == ["avg"]  # the SDK drops `aggregation`
    assert out["dates_len"] >= 10
    assert out["active_total"] == 3


def test_task_clone_set_parameters_enqueue_runs_to_completed(
    sdk: SdkProcess, sim: SimServer
) -> None:
    out = sdk.run(sdk_task_flow, TEMPLATE, "gpu-a100")
    assert out["name"] == "parking-occupancy-train"
    assert out["template_status"] == "completed"
    assert out["clone_parent"] == TEMPLATE
    assert out["params"] == {"General/lr": "0.05", "Args/batch_size": "128"}
    assert out["final"] == "completed"
    assert out["warnings"] == []
    assert out["last_worker"] in ("gpu-box-01:gpu0", "gpu-box-02:gpu0")
    hyper = sim.state.tasks[out["clone_id"]]["hyperparams"]
    assert set(hyper) == {"General", "Args"}  # set_parameters replaced the whole dict


def test_clone_with_tags_search_by_tag_and_706_on_a_second_enqueue(sdk: SdkProcess) -> None:
    tag = f"mlbus-request:{os.urandom(16).hex()}"
    out = sdk.run(sdk_exactly_once_calls, TEMPLATE, DEMO_QUEUE_IDS["cpu"], tag)
    assert out["before"] == []  # a first delivery finds nothing
    assert out["tags"] == sorted(["mlbus", tag, "mlbus-user:alice"])
    assert (out["parent"], out["status"]) == (TEMPLATE, "created")
    assert out["found"] == [(out["new"], "created")]  # a redelivery finds the clone by its tag
    assert out["others"] == []  # by that exact tag only
    assert out["first"] == (1, 1, False)  # no agent listens on cpu
    assert out["again"] == (400, 706)  # already queued: the enqueuer counts it as done
    assert out["after"] == [(out["new"], "queued")]


def test_enqueue_completed_task_is_400_110(sdk: SdkProcess) -> None:
    out = sdk.run(sdk_enqueue_completed, TEMPLATE, DEMO_QUEUE_IDS["gpu-a100"])
    msg = "Invalid task status (Invalid status change): current_status=completed, new_status=queued"
    assert out["api"] == (400, 110, msg)
    _name, text = out["task"]
    assert "400/110" in text
    assert msg in text


def test_failing_template_fails_as_the_agent_leaves_it(sdk: SdkProcess) -> None:
    """clearml-agent's own words in the status; the script's error only in its console log,
    which the SDK reads through events.get_task_log."""
    out = sdk.run(sdk_failing_template, FAILING, "gpu-t4")
    assert out["status"] == "failed"
    assert out["reason"] == "worker execution exit code 1"
    assert out["message"] == "Changed by clearml-agent t4-box-01:gpu0"
    assert "RuntimeError: CUDA out of memory" in "\n".join(out["console"])


def test_bad_credentials_raise_login_error(sdk: SdkProcess, sim: SimServer) -> None:
    text = sdk.run(sdk_bad_login, sim.url)
    assert text.startswith("LoginError")
    assert "Unauthorized (invalid credentials)" in text


async def test_served_control_api_over_http() -> None:
    """The control API as benchmarks use it: faults and a new agent, over real HTTP."""
    auth = ("mlbus-dev-access", "mlbus-dev-secret")
    async with (
        SimServer(task_duration_s=0.2, report_interval_s=0.2, agent_tick_s=0.02) as server,
        httpx.AsyncClient(base_url=server.url, timeout=5) as http,
    ):
        assert (await http.get("/_sim/health")).json()["tasks"] == 3
        await http.post("/_sim/faults", json={"error_rate": 1, "endpoints": ["tasks.*"]})
        faulted = await http.post("/tasks.get_all", auth=auth)
        assert (faulted.status_code, faulted.headers["server"]) == (500, "clearml")
        assert (await http.post("/queues.get_all", auth=auth)).status_code == 200
        await http.delete("/_sim/faults")

        agent = {"name": "cpu-box:0", "queues": ["cpu"], "gpus": 0}
        assert (await http.post("/_sim/agents", json=agent)).status_code == 201
        clone = await http.post("/v2.23/tasks.clone", json={"task": TEMPLATE}, auth=auth)
        tid = clone.json()["data"]["id"]
        queued = await http.post(
            "/v2.23/tasks.enqueue", json={"task": tid, "queue_name": "cpu"}, auth=auth
        )
        assert queued.status_code == 200
        deadline = time.monotonic() + 5
        status = "queued"
        while status != "completed" and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            status = (await http.get(f"/_sim/tasks/{tid}")).json()["task"]["status"]
        assert status == "completed"
        assert server.state.tasks[tid]["last_worker"] == "cpu-box:0"
