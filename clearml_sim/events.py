"""Task events: console logs (``events.add_batch`` type ``log``, ``events.get_task_log``).

As on the server, an event batch for a task moves its ``last_update`` (the non-responsive
watchdog reads it), and ``get_task_log`` pages backwards from the latest line: with
``navigate_earlier`` (the default) the newest ``batch_size`` events, newest first.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from clearml_sim import results
from clearml_sim.state import Doc, SimState
from clearml_sim.timeutil import iso

#: Log events kept per task (the oldest are dropped first).
MAX_LOG_EVENTS = 10_000


def add_log(
    state: SimState, task_id: str, msg: str, *, level: str = "info", worker: str = ""
) -> None:
    """One console log event for a task (several lines may share one event, as the SDK sends)."""
    now = state.clock()
    event: Doc = {
        "timestamp": int(now * 1000),
        "@timestamp": iso(now),
        "type": "log",
        "task": task_id,
        "level": level,
        "worker": worker,
        "msg": msg,
        "metric": "",
        "variant": "",
        "iter": 0,
    }
    state.task_logs.setdefault(task_id, deque(maxlen=MAX_LOG_EVENTS)).append(event)
    _touch(state, task_id, now)


def add_batch(state: SimState, events: list[Any]) -> int:
    """Store the log and scalar events of a batch (other kinds are accepted and dropped);
    returns the number accepted."""
    for raw in events:
        if not isinstance(raw, dict) or not isinstance(raw.get("task"), str):
            continue
        task_id = raw["task"]
        if raw.get("type") == "log" and task_id in state.tasks:
            add_log(
                state,
                task_id,
                str(raw.get("msg") or ""),
                level=str(raw.get("level") or "info"),
                worker=str(raw.get("worker") or ""),
            )
        elif raw.get("type") == "training_stats_scalar" and task_id in state.tasks:
            results.add_scalar(state, task_id, raw)
            _touch(state, task_id, state.clock())
        elif task_id in state.tasks:
            _touch(state, task_id, state.clock())
    return len(events)


def _touch(state: SimState, task_id: str, now: float) -> None:
    task = state.tasks.get(task_id)
    if task is not None:
        task["last_update"] = iso(now)


def task_log(state: SimState, body: Doc) -> Doc:
    """``events.get_task_log`` (2.9+): a batch of log events before (``navigate_earlier``) or
    after ``from_timestamp``; newest first unless ``order: asc``."""
    task_id = str(body.get("task"))
    state.get_task(task_id)
    logs = list(state.task_logs.get(task_id, ()))
    size = max(1, min(int(body.get("batch_size") or 500), 10_000))
    since = body.get("from_timestamp")
    earlier = body.get("navigate_earlier", True) is not False
    if earlier:
        picked = [e for e in logs if since is None or e["timestamp"] < since][-size:]
        picked.reverse()
        if body.get("order") == "asc":
            picked.reverse()
    else:
        picked = [e for e in logs if since is None or e["timestamp"] > since][:size]
        if body.get("order") == "desc":
            picked.reverse()
    return {"events": picked, "returned": len(picked), "total": len(logs)}
