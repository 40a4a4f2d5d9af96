"""The task status machine (``bll/task/utils.py::state_machine``) and status changes."""

from __future__ import annotations

from typing import Any

from clearml_sim import errors
from clearml_sim.state import Doc, SimState
from clearml_sim.timeutil import iso, parse_ts

CREATED = "created"
QUEUED = "queued"
IN_PROGRESS = "in_progress"
STOPPED = "stopped"
FAILED = "failed"
COMPLETED = "completed"
PUBLISHED = "published"
CLOSED = "closed"

TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({QUEUED, IN_PROGRESS}),
    QUEUED: frozenset({CREATED, IN_PROGRESS, STOPPED}),
    IN_PROGRESS: frozenset({STOPPED, FAILED, CREATED, COMPLETED}),
    STOPPED: frozenset(
        {CLOSED, CREATED, FAILED, QUEUED, IN_PROGRESS, PUBLISHED, "publishing", COMPLETED}
    ),
    CLOSED: frozenset({CREATED, FAILED, PUBLISHED, "publishing", STOPPED}),
    FAILED: frozenset({CREATED, STOPPED, PUBLISHED, QUEUED}),
    "publishing": frozenset({PUBLISHED}),
    PUBLISHED: frozenset(),
    COMPLETED: frozenset({PUBLISHED, IN_PROGRESS, CREATED}),
    "unknown": frozenset(),
}
ALL_STATUSES = frozenset(TRANSITIONS)
_ENDED = frozenset({COMPLETED, FAILED, STOPPED})


def can_change(current: str, new: str) -> bool:
    """Same-state changes are always legal; otherwise the table decides."""
    return current == new or new in TRANSITIONS.get(current, frozenset())


def change_status(
    state: SimState,
    task: Doc,
    new: str,
    *,
    force: bool = False,
    reason: str | None = None,
    message: str | None = None,
    user: str | None = None,
    seen: str | None = None,
) -> dict[str, Any]:
    """Move ``task`` to ``new`` (400/110 if illegal without force); returns the ``fields`` dict.

    ``seen`` is the status the call read on arrival: the transition is checked against it, and
    the write is conditional on the task still having it (400/121 otherwise), as the server's
    ``Task.objects(id=..., status=current_status).update(...)`` is.
    """
    old = task["status"] if seen is None else seen
    if not force and not can_change(old, new):
        raise errors.invalid_status_change(old, new)
    if task["status"] != old:
        raise errors.failed_changing_task_status(task["id"], old, new)
    now = state.clock()
    stamp = iso(now)
    fields: dict[str, Any] = {
        "status": new,
        "status_reason": reason or "",
        "status_message": message or "",
        "status_changed": stamp,
        "last_update": stamp,
        "last_change": stamp,
        "last_changed_by": user or state.config.user_id,
    }
    if new == IN_PROGRESS and old != IN_PROGRESS:
        fields["started"] = stamp
    elif new in _ENDED and old == IN_PROGRESS:
        fields["completed"] = stamp
        if task.get("started"):
            fields["active_duration"] = int(now - parse_ts(task["started"]))
    elif new == PUBLISHED:
        fields["published"] = stamp
    task.update(fields)
    state.set_status_index(task["id"], old, new)
    return fields


def touch(state: SimState, task: Doc) -> dict[str, Any]:
    """Bump ``last_update``/``last_change`` after an edit; returns those fields."""
    stamp = iso(state.clock())
    task["last_update"] = stamp
    task["last_change"] = stamp
    task["last_changed_by"] = state.config.user_id
    return {"last_update": stamp, "last_change": stamp}
