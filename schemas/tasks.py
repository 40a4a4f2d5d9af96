"""Task lifecycle events (mlbus.events.task): what happened to a request's ClearML task."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Model, utcnow


class TaskEventKind(StrEnum):
    """What happened. Past tense: these are facts."""

    ENQUEUED = "TaskEnqueued"
    ENQUEUE_FAILED = "TaskEnqueueFailed"
    STARTED = "TaskStarted"
    COMPLETED = "TaskCompleted"
    FAILED = "TaskFailed"
    STOPPED = "TaskStopped"


class ResultFile(Model):
    """An artifact or output model a run produced, as a requester may see it (no address)."""

    name: str = Field(description="Its name on the task.", examples=["predictions"])
    type: str | None = Field(
        default=None,
        description="Artifact: its content type (else ClearML's artifact type); model: its "
        "framework.",
        examples=["text/csv"],
    )
    size: int | None = Field(default=None, description="Bytes, when known.", examples=[412])


class TaskResults(Model):
    """What a completed run produced: the last value of each scalar it reported (metric/variant,
    ClearML's latest positive value), its artifacts and its output models."""

    scalars: dict[str, float] = Field(
        default_factory=dict,
        description="Last value of each scalar, by 'metric/variant'.",
        examples=[{"Summary/loss": 0.1074, "Summary/accuracy": 0.94}],
    )
    artifacts: list[ResultFile] = Field(
        default_factory=list,
        description="Downloadable at /v1/requests/{id}/artifacts/{name}.",
    )
    models: list[ResultFile] = Field(default_factory=list, description="Output models.")


class TaskEvent(Model):
    """A task lifecycle fact about one request, for notifications and the request timeline."""

    kind: TaskEventKind = Field(description="What happened.", examples=["TaskEnqueued"])
    request_id: str = Field(description="The enqueue request.", examples=["5f0c8a9e2b7d4c1f"])
    user: str | None = Field(default=None, description="Requester.", examples=["alice"])
    task_id: str = Field(description="Opaque id of the task mapping.", examples=["3b1f0e3c"])
    clone_id: str | None = Field(
        default=None, description="Real ClearML id of the clone (internal).", examples=["9a8b7c"]
    )
    queue_name: str | None = Field(default=None, description="Queue used.", examples=["gpu-a100"])
    queue_watched: bool | None = Field(
        default=None, description="Whether any worker listened on the queue.", examples=[True]
    )
    message: str | None = Field(
        default=None,
        description="Human explanation, for failures.",
        examples=["The training queue 'gpu-x' does not exist on the cluster."],
    )
    results: TaskResults | None = Field(
        default=None, description="For TaskCompleted: what the run produced."
    )
    at: datetime = Field(default_factory=utcnow, description="When it happened (UTC).")
