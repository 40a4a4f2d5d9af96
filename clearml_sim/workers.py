"""Worker registry: register, status reports, liveness and the ``workers.get_all`` object (§6)."""

from __future__ import annotations

from collections import deque
from typing import Any

from clearml_sim import errors
from clearml_sim.state import Doc, SimState, WorkerRecord
from clearml_sim.timeutil import iso, parse_ts


def register(
    state: SimState,
    worker: Any,
    *,
    queues: list[str] | None = None,
    ip: str = "127.0.0.1",
    timeout: float | None = None,
    tags: list[str] | None = None,
    system_tags: list[str] | None = None,
) -> WorkerRecord:
    """Create or refresh a worker record."""
    if not isinstance(worker, str) or not worker:
        raise errors.invalid_worker_id(worker)
    now = state.clock()
    rec = state.workers.get(worker)
    if rec is None:
        rec = WorkerRecord(
            id=worker,
            ip=ip,
            register_time=now,
            last_activity=now,
            register_timeout=timeout or state.config.worker_timeout_s,
            samples=deque(maxlen=state.config.stats_retention),
        )
        state.workers[worker] = rec
    rec.last_activity = now
    if queues is not None:
        rec.queues = list(queues)
    if tags is not None:
        rec.tags = list(tags)
    if system_tags is not None:
        rec.system_tags = list(system_tags)
    return rec


def status_report(state: SimState, body: Doc, ip: str = "127.0.0.1") -> WorkerRecord:
    """``workers.status_report``: auto-registers, refreshes TTL, stores machine stats."""
    rec = register(
        state,
        body.get("worker"),
        queues=body.get("queues"),
        ip=ip,
        tags=body.get("tags"),
        system_tags=body.get("system_tags"),
    )
    now = state.clock()
    rec.task = body.get("task") or None
    rec.queue = body.get("queue") or None
    rec.last_report = now
    stats = body.get("machine_stats")
    ts = body.get("timestamp")
    sample_ts = ts / 1000.0 if isinstance(ts, int | float) and ts > 1e11 else now
    rec.samples.append((sample_ts, stats if isinstance(stats, dict) else {}, rec.task is not None))
    task = state.tasks.get(rec.task) if rec.task else None
    if task is not None:
        task["last_worker"] = rec.id
        task["last_worker_report"] = iso(now)
    return rec


def unregister(state: SimState, worker: Any) -> None:
    """``workers.unregister``; unknown workers are not an error (``auto_unregister``)."""
    if isinstance(worker, str):
        state.workers.pop(worker, None)


def live_workers(state: SimState, last_seen: float = 0) -> list[WorkerRecord]:
    """Workers within their TTL, and within ``last_seen`` seconds when that is non-zero."""
    now = state.clock()
    expired = [w.id for w in state.workers.values() if now - w.last_activity > w.register_timeout]
    for wid in expired:
        del state.workers[wid]
    return [
        w for w in state.workers.values() if not last_seen or now - w.last_activity <= last_seen
    ]


def watched_queues(state: SimState) -> set[str]:
    """Queue ids some live worker listens on (``queue_watched``)."""
    return {q for w in live_workers(state) for q in w.queues}


def _queue_ref(state: SimState, qid: str) -> Doc | None:
    queue = state.queues.get(qid)
    if queue is None:
        return None
    pending = state.queue_entries.get(qid, {})
    nxt = next(iter(pending), None)
    nxt_task = state.tasks.get(nxt) if nxt else None
    return {
        "id": qid,
        "name": queue["name"],
        "display_name": queue.get("display_name"),
        "next_task": {"id": nxt, "name": nxt_task["name"]} if nxt_task else None,
        "num_tasks": len(pending),
    }


def task_ref(state: SimState, tid: str | None) -> Doc | None:
    task = state.tasks.get(tid) if tid else None
    if task is None:
        return None
    running = 0.0
    if task.get("status") == "in_progress" and task.get("started"):
        running = state.clock() - parse_ts(task["started"])
    return {
        "id": task["id"],
        "name": task["name"],
        "running_time": int(running * 1000),
        "last_iteration": task.get("last_iteration", 0),
    }


def worker_doc(state: SimState, rec: WorkerRecord) -> Doc:
    """The worker object of ``workers.get_all`` (no machine stats: those are in ``get_stats``)."""
    cfg = state.config
    task = state.tasks.get(rec.task) if rec.task else None
    project = state.projects.get(task["project"]) if task and task.get("project") else None
    return {
        "key": f"worker_{cfg.company_id}_{cfg.user_id}_{rec.id}",
        "id": rec.id,
        "user": {"id": cfg.user_id, "name": cfg.user_name},
        "company": {"id": cfg.company_id, "name": cfg.company_name},
        "ip": rec.ip,
        "register_time": iso(rec.register_time),
        "register_timeout": int(rec.register_timeout),
        "last_activity_time": iso(rec.last_activity),
        "last_report_time": iso(rec.last_report) if rec.last_report else None,
        "task": task_ref(state, rec.task),
        "project": {"id": project["id"], "name": project["name"]} if project else None,
        "queue": _queue_ref(state, rec.queue) if rec.queue else None,
        "queues": [q for q in (_queue_ref(state, qid) for qid in rec.queues) if q],
        "tags": rec.tags,
        "system_tags": rec.system_tags,
    }
