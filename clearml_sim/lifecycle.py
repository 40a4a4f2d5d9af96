"""Task operations that touch status and queues together: enqueue, dequeue, stop, reset."""

from __future__ import annotations

from typing import Any

from clearml_sim import errors, queues
from clearml_sim.state import Doc, SimState
from clearml_sim.status import (
    CREATED,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    STOPPED,
    can_change,
    change_status,
)
from clearml_sim.timeutil import parse_ts

_ENQUEUEABLE = frozenset({CREATED, STOPPED, FAILED, QUEUED})


def resolve_queue(state: SimState, body: Doc) -> str:
    """The target queue of ``tasks.enqueue``: id, name (auto-created) or the default queue."""
    qid, qname = body.get("queue"), body.get("queue_name")
    if qid and qname:
        raise errors.validation_error("Either queue id or queue name should be provided, not both")
    if qname:
        found = queues.find_by_name(state, qname)
        return found or queues.create_queue(state, str(qname))["id"]
    if qid:
        return str(state.get_queue(qid)["id"])
    return str(queues.default_queue(state)["id"])


def enqueue(
    state: SimState, body: Doc, watched: set[str] | None = None, seen: str | None = None
) -> dict[str, Any]:
    """``tasks.enqueue`` (§4.3): the status is checked against the one read on arrival
    (``seen``) and changed on condition that it still holds (400/121 when another call moved
    it meanwhile); then the queue entry is pushed."""
    task = state.get_task(body.get("task"))
    qid = resolve_queue(state, body)
    force = bool(body.get("force"))
    prev = task["status"] if seen is None else seen
    if not force and (prev not in _ENQUEUEABLE or not can_change(prev, QUEUED)):
        raise errors.invalid_status_change(prev, QUEUED)
    if task["status"] != prev:
        raise errors.failed_changing_task_status(task["id"], prev, QUEUED)
    queues.push(state, qid, task["id"])
    fields = change_status(
        state,
        task,
        QUEUED,
        force=True,
        reason=body.get("status_reason"),
        message=body.get("status_message"),
    )
    task["enqueue_status"] = prev
    task["execution"]["queue"] = qid
    if "development" in task["system_tags"]:
        state.set_tags(task, "system_tags", [t for t in task["system_tags"] if t != "development"])
    fields["enqueue_status"] = prev
    fields["execution.queue"] = qid
    result: dict[str, Any] = {"queued": 1, "updated": 1, "fields": fields}
    if body.get("verify_watched_queue"):
        result["queue_watched"] = watched is not None and qid in watched
    return result


def dequeue(state: SimState, body: Doc) -> dict[str, Any]:
    """``tasks.dequeue``: a task that is not queued/in progress gives ``updated: 0``."""
    task = state.get_task(body.get("task"))
    removed = queues.remove(state, task["id"])
    if task["status"] not in (QUEUED, IN_PROGRESS):
        return {"updated": 0}
    new = body.get("new_status") or task.get("enqueue_status") or CREATED
    if task["status"] == QUEUED and new == QUEUED:
        new = CREATED
    fields = change_status(
        state,
        task,
        new,
        force=True,
        reason=body.get("status_reason"),
        message=body.get("status_message"),
    )
    task["execution"]["queue"] = None
    fields["execution.queue"] = None
    return {"dequeued": int(removed), "updated": 1, "fields": fields}


def stop(state: SimState, body: Doc, task_timeout_s: float = 600.0) -> dict[str, Any]:
    """``tasks.stop``: immediate for queued/idle tasks, else ask the runner with ``stopping``."""
    task = state.get_task(body.get("task"))
    force = bool(body.get("force"))
    if not force and not can_change(task["status"], STOPPED):
        raise errors.invalid_status_change(task["status"], STOPPED)
    reported = task.get("last_worker_report")
    idle = not reported or state.clock() - parse_ts(reported) > task_timeout_s
    if task["status"] == QUEUED or "development" in task["system_tags"] or idle:
        queues.remove(state, task["id"])
        task["execution"]["queue"] = None
        fields = change_status(
            state,
            task,
            STOPPED,
            force=True,
            reason=body.get("status_reason") or "",
            message=body.get("status_message") or f"Stopped by {state.config.user_name}",
        )
        return {"updated": 1, "fields": fields}
    task["status_message"] = "stopping"
    return {"updated": 1, "fields": {"status_message": "stopping"}}


def reset(state: SimState, body: Doc) -> dict[str, Any]:
    """``tasks.reset``: back to ``created`` with run results cleared."""
    task = state.get_task(body.get("task"))
    dequeued = queues.remove(state, task["id"])
    fields = change_status(
        state,
        task,
        CREATED,
        force=bool(body.get("force")),
        reason=body.get("status_reason"),
        message=body.get("status_message"),
    )
    for key, value in (("started", None), ("completed", None), ("active_duration", None)):
        task[key] = value
    task["last_iteration"] = 0
    task["last_metrics"] = {}
    task["execution"]["queue"] = None
    result: dict[str, Any] = {"updated": 1, "fields": fields}
    if dequeued:
        result["dequeued"] = {"removed": 1}
    return result
