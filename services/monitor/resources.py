"""The join of one resource tick: ClearML workers and queues plus GPU heartbeats, into one
ResourceState per machine and one QueueState per queue. Pure logic, no I/O, the clock passed in.

Definitions, and why:
- machine id = the part of a ClearML worker id before ':' ("gpu-box-01:gpu0" → "gpu-box-01"),
  which is the host name clearml-agent uses and the one the GPU agent keys its heartbeats by;
- online = a heartbeat within `missed` of its own intervals, or a ClearML worker on it that
  reported recently (the poll asks ClearML only for recent workers). `since` moves only when
  `online` flips;
- a GPU is free when its utilisation and its memory use are both under the rule's thresholds;
  a reading with a field missing (NVML error) is not free;
- a machine with workers but no recent heartbeat has no *known* free GPU: its GPUs count 0
  towards `free_gpus`. Its idle workers still show in `idle_workers`, and the `auto` queue
  choice ranks an idle worker right after a free GPU. Counting unverified GPUs as free would
  send tasks to boxes whose GPUs someone else may be using outside ClearML;
- a queue's `free_gpus` sums the free GPUs of the online machines of its idle workers, each
  machine once (ClearML's per-worker GPU pinning is not on the worker object).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.heartbeat import AgentHeartbeat, GpuReading
from schemas.resources import QueueState, ResourceState


def machine_of(worker_id: str) -> str:
    """The machine id in a ClearML worker id."""
    return worker_id.split(":", 1)[0]


def parse_time(value: object) -> datetime | None:
    """An ISO time from ClearML (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True)
class FreeRule:
    """When a GPU counts as free."""

    util_pct: float = 10.0
    memory_pct: float = 10.0

    def is_free(self, gpu: GpuReading) -> bool:
        """Low load and low memory, both known."""
        if gpu.error or gpu.utilization_pct is None or gpu.utilization_pct >= self.util_pct:
            return False
        if gpu.memory_used_mb is None or not gpu.memory_total_mb:
            return False
        return 100.0 * gpu.memory_used_mb / gpu.memory_total_mb < self.memory_pct


@dataclass(frozen=True)
class Beat:
    """A machine's latest heartbeat and when it was sent."""

    heartbeat: AgentHeartbeat
    at: datetime


@dataclass(frozen=True)
class Worker:
    """The parts of a `workers.get_all` row the join needs."""

    id: str
    ip: str | None
    queue_ids: tuple[str, ...]
    queue_names: tuple[str, ...]
    task_id: str | None
    last_report: datetime | None

    @property
    def machine_id(self) -> str:
        return machine_of(self.id)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Worker:
        queues = [q for q in row.get("queues") or [] if isinstance(q, dict) and q.get("id")]
        task = row.get("task") or {}
        return cls(
            id=str(row["id"]),
            ip=row.get("ip") or None,
            queue_ids=tuple(str(q["id"]) for q in queues),
            queue_names=tuple(str(q.get("name") or q["id"]) for q in queues),
            task_id=str(task["id"]) if isinstance(task, dict) and task.get("id") else None,
            last_report=parse_time(row.get("last_report_time")),
        )


@dataclass(frozen=True)
class QueueWait:
    """A queue's recent average wait and length (queues.get_queue_metrics)."""

    avg_wait_s: float | None
    avg_length: float | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QueueWait:
        waits = [float(w) for w in row.get("avg_waiting_times") or []]
        lengths = [float(n) for n in row.get("queue_lengths") or []]
        return cls(
            round(sum(waits) / len(waits), 3) if waits else None,
            round(sum(lengths) / len(lengths), 3) if lengths else None,
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything one tick read."""

    now: datetime
    workers: list[Worker]
    queues: list[dict[str, Any]]
    waits: dict[str, QueueWait]
    beats: dict[str, Beat]
    previous: dict[str, ResourceState] = field(default_factory=dict)


def machine_states(snap: Snapshot, rule: FreeRule, missed: int) -> dict[str, ResourceState]:
    """One state per machine known from heartbeats, workers or an earlier state."""
    by_machine: dict[str, list[Worker]] = {}
    for w in snap.workers:
        by_machine.setdefault(w.machine_id, []).append(w)
    ids = set(snap.beats) | set(by_machine) | set(snap.previous)
    return {mid: _machine(mid, snap, by_machine.get(mid, []), rule, missed) for mid in sorted(ids)}


def _machine(
    mid: str, snap: Snapshot, workers: list[Worker], rule: FreeRule, missed: int
) -> ResourceState:
    beat, prev = snap.beats.get(mid), snap.previous.get(mid)
    fresh = beat is not None and snap.now - beat.at <= timedelta(
        seconds=missed * beat.heartbeat.interval_s
    )
    online = fresh or bool(workers)
    gpus = beat.heartbeat.gpus if beat else (prev.gpus if prev else [])
    reports = [w.last_report for w in workers if w.last_report is not None]
    return ResourceState(
        machine_id=mid,
        online=online,
        since=prev.since if prev is not None and prev.online == online else snap.now,
        gpus=gpus,
        workers=sorted(w.id for w in workers),
        queues=sorted({q for w in workers for q in w.queue_names}),
        current_tasks=sorted(w.task_id for w in workers if w.task_id),
        last_heartbeat=beat.at if beat else (prev.last_heartbeat if prev else None),
        cpu_pct=beat.heartbeat.cpu_pct if beat else None,
        at=snap.now,
        free_gpus=sum(rule.is_free(g) for g in gpus) if fresh else 0,
        ips=sorted({w.ip for w in workers if w.ip}),
        last_worker_report=max(reports) if reports else (prev.last_worker_report if prev else None),
    )


def queue_states(snap: Snapshot, machines: dict[str, ResourceState]) -> dict[str, QueueState]:
    """One state per ClearML queue."""
    return {str(q["id"]): _queue(q, snap, machines) for q in snap.queues if q.get("id")}


def _queue(q: dict[str, Any], snap: Snapshot, machines: dict[str, ResourceState]) -> QueueState:
    qid = str(q["id"])
    entries = [e for e in q.get("entries") or [] if isinstance(e, dict)]
    added = [t for e in entries if (t := parse_time(e.get("added"))) is not None]
    listening = [w for w in snap.workers if qid in w.queue_ids]
    idle = [w for w in listening if w.task_id is None]
    behind = {w.machine_id for w in idle}
    free = sum(m.free_gpus for mid in behind if (m := machines.get(mid)) is not None and m.online)
    wait = snap.waits.get(qid, QueueWait(None, None))
    return QueueState(
        queue_id=qid,
        name=str(q.get("name") or qid),
        length=len(entries),
        oldest_wait_s=round(max(0.0, (snap.now - min(added)).total_seconds()), 1)
        if added
        else None,
        avg_wait_s=wait.avg_wait_s,
        workers=sorted(w.id for w in listening),
        idle_workers=sorted(w.id for w in idle),
        free_gpus=free,
        at=snap.now,
        avg_length=wait.avg_length,
    )
