"""A user's task events as notifications for that user alone (`status: event`).

The notification's id is derived from the event (its time, request and kind), so a task event
delivered twice gives the same notification, which MongoDB and the live stream then keep once.
"""

from __future__ import annotations

import hashlib

from schemas.notifications import AlertStatus, Notification, Severity
from schemas.tasks import TaskEvent, TaskEventKind, TaskResults

#: What each task event is called, how urgent it is, and the words for it.
_WORDS: dict[TaskEventKind, tuple[str, Severity, str]] = {
    TaskEventKind.STARTED: ("task_started", Severity.INFO, "started"),
    TaskEventKind.COMPLETED: ("task_completed", Severity.INFO, "completed"),
    TaskEventKind.FAILED: ("task_failed", Severity.WARNING, "failed"),
    TaskEventKind.STOPPED: ("task_stopped", Severity.INFO, "was stopped"),
    TaskEventKind.ENQUEUE_FAILED: ("task_enqueue_failed", Severity.WARNING, "could not be queued"),
}


def event_id(event: TaskEvent) -> str:
    """A time-ordered id (as `schemas.base.new_event_id`) that is the same on every delivery."""
    millis = int(event.at.timestamp() * 1000)
    digest = hashlib.sha256(f"{event.request_id}\n{event.kind}".encode()).hexdigest()
    return f"{millis:012x}{digest[:20]}"


def task_notification(event: TaskEvent) -> Notification | None:
    """The notification for a task event, or None for events users are not told about."""
    words = _WORDS.get(event.kind)
    if words is None:
        return None
    kind, severity, verb = words
    where = f" on queue {event.queue_name}" if event.queue_name else ""
    message = f"Your training task {event.task_id} (request {event.request_id}) {verb}{where}."
    if event.message:
        message = f"{message} {event.message}"
    if event.results is not None:
        message = f"{message} {results_text(event.results)}"
    return Notification(
        id=event_id(event),
        kind=kind,
        severity=severity,
        status=AlertStatus.EVENT,
        subject=event.request_id,
        fingerprint=f"{kind}:{event.request_id}",
        message=message,
        user=event.user,
        first_seen=event.at,
        results=event.results,
    )


#: Scalars named in a notification's words (all of them are in its `results`).
SCALARS_SAID = 5


def results_text(results: TaskResults) -> str:
    """A completed run's results in a sentence or two."""
    parts = []
    if results.scalars:
        said = [f"{k} = {v:.4g}" for k, v in list(results.scalars.items())[:SCALARS_SAID]]
        more = len(results.scalars) - SCALARS_SAID
        parts.append("Last values: " + ", ".join(said) + (f" and {more} more" if more > 0 else ""))
    files = [f"{a.name} ({_size(a.size)})" for a in results.artifacts]
    if files:
        parts.append("Artifacts: " + ", ".join(files))
    if results.models:
        parts.append("Models: " + ", ".join(m.name for m in results.models))
    return ". ".join(parts) + "." if parts else "It reported no results."


def _size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024**2:.1f} MiB"
