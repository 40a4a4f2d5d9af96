"""The resource join (workers + queues + heartbeats → machine and queue states) and what goes out
when, on a fake clock (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.heartbeat import AgentHeartbeat, GpuReading
from services.monitor.changes import ChangeGate, resource_fingerprint
from services.monitor.heartbeats import HeartbeatBook
from services.monitor.resources import (
    Beat,
    FreeRule,
    QueueWait,
    Snapshot,
    Worker,
    machine_of,
    machine_states,
    queue_states,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULE = FreeRule(util_pct=10.0, memory_pct=10.0)


def gpu(index: int, util: float, used_mb: float = 100.0, total_mb: float = 40960.0) -> GpuReading:
    return GpuReading(
        index=index,
        uuid=f"GPU-{index}",
        name="NVIDIA A100-SXM4-40GB",
        utilization_pct=util,
        memory_used_mb=used_mb,
        memory_total_mb=total_mb,
    )


def beat(machine: str, at: datetime, *gpus: GpuReading, interval_s: float = 5.0) -> Beat:
    return Beat(AgentHeartbeat(machine_id=machine, interval_s=interval_s, gpus=list(gpus)), at)


def worker_row(
    worker_id: str, queues: list[tuple[str, str]], task: str | None = None, ip: str = "10.0.0.11"
) -> dict[str, Any]:
    return {
        "id": worker_id,
        "ip": ip,
        "last_report_time": "2026-11-26T11:59:58.000+00:00",
        "task": {"id": task, "name": "t"} if task else None,
        "queues": [{"id": qid, "name": name} for qid, name in queues],
    }


def queue_row(qid: str, name: str, *added: datetime) -> dict[str, Any]:
    return {
        "id": qid,
        "name": name,
        "entries": [{"task": f"task{i}", "added": a.isoformat()} for i, a in enumerate(added)],
    }


A100, T4 = ("qa100", "gpu-a100"), ("qt4", "gpu-t4")


def snapshot(now: datetime = T0, **fields: Any) -> Snapshot:
    rows = fields.pop("workers", [])
    return Snapshot(
        now=now,
        workers=[Worker.from_row(r) for r in rows],
        queues=fields.pop("queues", [queue_row(*A100), queue_row(*T4)]),
        waits=fields.pop("waits", {}),
        beats=fields.pop("beats", {}),
        **fields,
    )


def test_the_machine_is_the_worker_id_before_the_colon() -> None:
    assert machine_of("gpu-box-01:gpu0") == "gpu-box-01"
    assert machine_of("gpu-box-01:gpu0,1") == "gpu-box-01"
    assert machine_of("plainhost") == "plainhost"


def test_a_gpu_is_free_only_with_low_load_and_low_memory_both_known() -> None:
    assert RULE.is_free(gpu(0, 3.0, 500.0))
    assert not RULE.is_free(gpu(0, 45.0, 500.0))  # busy
    assert not RULE.is_free(gpu(0, 0.0, 30000.0))  # memory held by someone
    assert not RULE.is_free(GpuReading(index=0, uuid="u", name="n", error="NVML: GPU is lost"))
    assert not RULE.is_free(gpu(0, 0.0, 100.0, total_mb=0.0))


def test_heartbeats_and_workers_join_into_one_state_per_machine() -> None:
    snap = snapshot(
        workers=[
            worker_row("gpu-box-01:gpu0", [A100]),
            worker_row("gpu-box-01:gpu1", [A100, T4], task="run1", ip="10.0.0.12"),
        ],
        beats={"gpu-box-01": beat("gpu-box-01", T0 - timedelta(seconds=2), gpu(0, 2), gpu(1, 97))},
    )
    state = machine_states(snap, RULE, missed=3)["gpu-box-01"]
    assert state.online
    assert state.since == T0
    assert state.workers == ["gpu-box-01:gpu0", "gpu-box-01:gpu1"]
    assert state.queues == ["gpu-a100", "gpu-t4"]
    assert state.current_tasks == ["run1"]
    assert state.ips == ["10.0.0.11", "10.0.0.12"]
    assert [g.index for g in state.gpus] == [0, 1]
    assert state.free_gpus == 1
    assert state.last_heartbeat == T0 - timedelta(seconds=2)


def test_a_machine_is_offline_after_three_missed_heartbeats_and_since_moves_only_then() -> None:
    last = T0 - timedelta(seconds=14)
    snap = snapshot(beats={"edge-1": beat("edge-1", last, gpu(0, 0))})
    first = machine_states(snap, RULE, missed=3)["edge-1"]
    assert first.online  # 14 s < 3 x 5 s
    assert first.free_gpus == 1
    later = snapshot(now=T0 + timedelta(seconds=5), beats=snap.beats, previous={"edge-1": first})
    second = machine_states(later, RULE, missed=3)["edge-1"]
    assert not second.online
    assert second.since == T0 + timedelta(seconds=5)
    assert second.free_gpus == 0  # an offline machine's GPUs are not free for anyone
    assert second.gpus == first.gpus  # the last readings stay for the operator to see
    again = snapshot(now=T0 + timedelta(seconds=10), beats=snap.beats, previous={"edge-1": second})
    assert machine_states(again, RULE, missed=3)["edge-1"].since == second.since


def test_a_recent_worker_keeps_a_machine_online_without_heartbeats_but_frees_no_gpu() -> None:
    snap = snapshot(workers=[worker_row("bare-box:gpu0", [T4])])
    machines = machine_states(snap, RULE, missed=3)
    assert machines["bare-box"].online
    assert machines["bare-box"].free_gpus == 0
    queue = queue_states(snap, machines)["qt4"]
    assert queue.idle_workers == ["bare-box:gpu0"]
    assert queue.free_gpus == 0


def test_a_queue_counts_free_gpus_behind_its_idle_workers_on_online_machines_once() -> None:
    fresh = T0 - timedelta(seconds=1)
    snap = snapshot(
        workers=[
            worker_row("box-a:gpu0", [A100]),
            worker_row("box-a:gpu1", [A100]),  # same machine: its free GPUs count once
            worker_row("box-b:gpu0", [A100], task="run9"),  # busy worker: not behind the queue
            worker_row("box-c:gpu0", [T4]),
        ],
        beats={
            "box-a": beat("box-a", fresh, gpu(0, 1), gpu(1, 2)),
            "box-b": beat("box-b", fresh, gpu(0, 1)),
            "box-c": beat("box-c", fresh, gpu(0, 99)),
        },
        queues=[
            queue_row(*A100, T0 - timedelta(seconds=30), T0 - timedelta(seconds=5)),
            queue_row(*T4),
        ],
        waits={"qa100": QueueWait(avg_wait_s=12.5, avg_length=2.0)},
    )
    queues = queue_states(snap, machine_states(snap, RULE, missed=3))
    a100, t4 = queues["qa100"], queues["qt4"]
    assert a100.free_gpus == 2
    assert a100.workers == ["box-a:gpu0", "box-a:gpu1", "box-b:gpu0"]
    assert a100.idle_workers == ["box-a:gpu0", "box-a:gpu1"]
    assert a100.length == 2
    assert a100.oldest_wait_s == 30.0
    assert (a100.avg_wait_s, a100.avg_length) == (12.5, 2.0)
    assert (t4.free_gpus, t4.length, t4.oldest_wait_s) == (0, 0, None)


def test_queue_metrics_rows_average_over_the_window() -> None:
    wait = QueueWait.from_row(
        {"queue": "q", "dates": [1, 2], "avg_waiting_times": [10.0, 20.0], "queue_lengths": [1, 3]}
    )
    assert (wait.avg_wait_s, wait.avg_length) == (15.0, 2.0)
    assert QueueWait.from_row({"queue": "q", "dates": []}) == QueueWait(None, None)


def test_the_newest_heartbeat_wins_and_future_times_are_clamped() -> None:
    book = HeartbeatBook()
    hb = AgentHeartbeat(machine_id="m", interval_s=5.0)
    book.observe(hb, T0, T0)
    book.observe(hb.model_copy(update={"cpu_pct": 1.0}), T0 - timedelta(seconds=5), T0)
    assert book.latest["m"].heartbeat.cpu_pct is None  # an older one arriving late is ignored
    book.observe(hb, T0 + timedelta(hours=1), T0 + timedelta(seconds=1))
    assert book.latest["m"].at == T0 + timedelta(seconds=1)


def test_small_gpu_moves_are_not_news_but_a_refresh_comes_anyway() -> None:
    snap = snapshot(beats={"m": beat("m", T0, gpu(0, 41.0))})
    state = machine_states(snap, RULE, missed=3)["m"]
    gate = ChangeGate(refresh_s=60)
    assert gate.due("m", resource_fingerprint(state), T0)
    gate.mark("m", resource_fingerprint(state), T0)
    wiggle = state.model_copy(update={"gpus": [gpu(0, 44.0)]})
    assert not gate.due("m", resource_fingerprint(wiggle), T0 + timedelta(seconds=5))
    jump = state.model_copy(update={"gpus": [gpu(0, 95.0)]})
    assert gate.due("m", resource_fingerprint(jump), T0 + timedelta(seconds=5))
    assert gate.due("m", resource_fingerprint(wiggle), T0 + timedelta(seconds=60))
