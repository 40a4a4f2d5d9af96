"""What a ClearML status means for a request, and the set of requests being followed.

Pure logic, no I/O: the poller asks `observe()` whether a polled row is news.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from schemas.status import UNSUCCESSFUL
from schemas.tasks import ResultFile, TaskEvent, TaskEventKind, TaskResults

#: ClearML task status → request status. `created` and `unknown` say nothing about the run.
STATUS_MAP = {
    "queued": "queued",
    "in_progress": "running",
    "completed": "completed",
    "published": "completed",
    "closed": "completed",
    "failed": "failed",
    "stopped": "stopped",
}

EVENT_KINDS = {
    "running": TaskEventKind.STARTED,
    "completed": TaskEventKind.COMPLETED,
    "failed": TaskEventKind.FAILED,
    "stopped": TaskEventKind.STOPPED,
}


def request_status(clearml_status: object) -> str | None:
    """The request status for a ClearML status, or None when it tells nothing."""
    return STATUS_MAP.get(str(clearml_status or "").lower())


def human_message(
    status: str, status_message: object, status_reason: object, error: str | None = None
) -> str | None:
    """Words for a flow author about a failed or stopped run (None for other statuses).

    `error` is the run's own error, from its console log: a real clearml-agent overwrites the
    status message with its own words ("Changed by clearml-agent <worker>"), which say nothing
    to a requester and name a machine, so they are left out.
    """
    if status not in UNSUCCESSFUL:
        return None
    what = "failed" if status == "failed" else "was stopped"
    message, reason = str(status_message or "").strip(), str(status_reason or "").strip()
    if message.startswith(AGENT_WORDS):
        message = ""
    if error:
        message = error
    if message and reason and reason.lower() not in message.lower():
        return f"The training run {what}: {message} ({reason})."
    if message or reason:
        return f"The training run {what}: {message or reason}."
    return f"The training run {what} on the cluster; ClearML gave no reason."


#: How clearml-agent begins the status message of a task it ended (`commands/worker.py`).
AGENT_WORDS = "Changed by "
#: The most of a run's error a requester is given.
ERROR_CHARS = 300
#: An exception line: `ValueError: ...`, `torch.cuda.OutOfMemoryError: ...`, `KeyboardInterrupt`.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Failure|Fault)\b(:.*)?$")
_AGENT_LINE = re.compile(r"^Process (failed, exit code|terminated by user)")
_URL = re.compile(r"\b[a-zA-Z][\w+.-]*://[^\s'\"]+")
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@+-]+){2,}")


def sanitized(text: str) -> str:
    """A line fit for a requester: addresses hidden, paths cut to their file name, bounded."""
    text = _URL.sub("<address>", text)
    text = _IP.sub("<address>", text)
    text = _PATH.sub(lambda m: re.split(r"[\\/]", m.group(0))[-1], text)
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def run_error(events: list[dict[str, Any]]) -> str | None:
    """The run's own error from the tail of its console log (oldest event first): the last
    exception line, else the last line the script printed; None when there is none."""
    lines = [
        line.strip()
        for event in events
        for line in str(event.get("msg") or "").splitlines()
        if line.strip() and not _AGENT_LINE.match(line.strip())
    ]
    for line in reversed(lines):
        if _EXCEPTION.match(line):
            return sanitized(line)
    return sanitized(lines[-1]) if lines else None


@dataclass
class Watched:
    """One request being followed. `status` moves only once the change is durable."""

    request_id: str
    clone_id: str
    status: str
    user: str | None
    task_id: str
    queue: str | None
    #: Events recorded in MongoDB but not yet taken by Kafka, oldest first; sent on the next tick.
    pending: list[TaskEvent] = field(default_factory=list)
    #: Polls in a row that did not find the clone, or found it back in `created`.
    missing: int = 0


@dataclass(frozen=True)
class Change:
    """A polled status that differs from the one the monitor knows; a completion carries what
    the run produced, and the artifacts' real URIs (internal: for the download route and
    admins)."""

    status: str
    message: str | None
    results: TaskResults | None = None
    uris: dict[str, str] = field(default_factory=dict)


#: Bounds on what one run's results may hold (a run can report thousands of scalars).
MAX_SCALARS = 200
MAX_FILES = 100


def results_from(
    task: dict[str, Any], models: list[dict[str, Any]], scalars: dict[str, Any]
) -> tuple[TaskResults, dict[str, str]]:
    """A run's results from `tasks.get_all` (execution.artifacts, models.output),
    `models.get_all` and `events.get_task_latest_scalar_values`; and the artifacts' URIs."""
    values: dict[str, float] = {}
    for metric in scalars.get("metrics") or []:
        for variant in metric.get("variants") or []:
            value = variant.get("last_value")
            if isinstance(value, int | float) and len(values) < MAX_SCALARS:
                values[f"{metric.get('name')}/{variant.get('name')}"] = float(value)
    artifacts, uris = [], {}
    for raw in (task.get("execution") or {}).get("artifacts") or []:
        if not isinstance(raw, dict) or not raw.get("key") or raw.get("mode") == "input":
            continue
        kind = (raw.get("type_data") or {}).get("content_type") or raw.get("type")
        size = raw.get("content_size")
        artifacts.append(
            ResultFile(
                name=str(raw["key"]),
                type=str(kind) if kind else None,
                size=int(size) if isinstance(size, int | float) else None,
            )
        )
        if raw.get("uri"):
            uris[str(raw["key"])] = str(raw["uri"])
    by_id = {str(m.get("id")): m for m in models}
    outputs = [
        ResultFile(
            name=str(link.get("name") or "model"),
            type=by_id.get(str(link.get("model")), {}).get("framework"),
        )
        for link in (task.get("models") or {}).get("output") or []
        if isinstance(link, dict)
    ]
    return TaskResults(
        scalars=values, artifacts=artifacts[:MAX_FILES], models=outputs[:MAX_FILES]
    ), uris


def observe(watched: Watched, row: dict[str, Any]) -> Change | None:
    """The change `row` (a tasks.get_all row) brings to `watched`, or None."""
    status = request_status(row.get("status"))
    if status is None or status == watched.status:
        return None
    return Change(
        status, human_message(status, row.get("status_message"), row.get("status_reason"))
    )


GONE = Change(
    "stopped",
    "The training run's task no longer exists on the cluster (it was deleted there); "
    "the run did not finish.",
)
RESET = Change(
    "stopped",
    "The training run's task was reset on the cluster and will not run unless it is "
    "enqueued again.",
)


def absent(watched: Watched, row: dict[str, Any] | None, polls: int) -> Change | None:
    """The change a poll brings when the clone is gone (`row` None) or back in `created`: none
    until it has been so for `polls` polls in a row, then the request ends as stopped."""
    if row is not None and str(row.get("status") or "").lower() != "created":
        watched.missing = 0
        return None
    watched.missing += 1
    if watched.missing < polls:
        return None
    return GONE if row is None else RESET


def event_for(watched: Watched, change: Change) -> TaskEvent | None:
    """The task event a change is worth (None: back to queued is not an event)."""
    kind = EVENT_KINDS.get(change.status)
    if kind is None:
        return None
    return TaskEvent(
        kind=kind,
        request_id=watched.request_id,
        user=watched.user,
        task_id=watched.task_id,
        clone_id=watched.clone_id,
        queue_name=watched.queue,
        message=change.message,
        results=change.results,
    )


@dataclass
class WatchSet:
    """Requests being followed, by request id."""

    items: dict[str, Watched] = field(default_factory=dict)

    def add(self, watched: Watched) -> bool:
        """Follow a request; False when it was already followed (its state is kept)."""
        if watched.request_id in self.items:
            return False
        self.items[watched.request_id] = watched
        return True

    def drop(self, request_id: str) -> None:
        """Stop following a request."""
        self.items.pop(request_id, None)

    def by_clone(self) -> dict[str, Watched]:
        """The followed requests by ClearML clone id."""
        return {w.clone_id: w for w in self.items.values()}

    def __len__(self) -> int:
        return len(self.items)
