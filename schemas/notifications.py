"""Notifications (mlbus.notifications): what operators and users are told.

An alert (a condition with a start and an end, like "machine offline") gives one notification
with `status: firing` when it starts and one with `status: resolved` when it ends, both with the
same `fingerprint`; a still-firing alert may be repeated (`repeat: true`) after the repeat
interval. A one-off fact (a user's task completed) has `status: event`. Many alerts of one kind
starting together are grouped into one notification whose `subjects` lists them all; its
`fingerprint` names that group, and since the members of a storm may end at different times (in
other groups), a consumer matches firing to resolved by `kind` and each of `subjects`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Model, new_event_id, utcnow
from schemas.tasks import TaskResults


class Severity(StrEnum):
    """How urgent."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    """Where an alert stands; `event` for one-off facts that have no end."""

    FIRING = "firing"
    RESOLVED = "resolved"
    EVENT = "event"


class Notification(Model):
    """A condition that started or ended, or a fact a user asked to hear about."""

    id: str = Field(
        default_factory=new_event_id,
        description="Unique, time-ordered id (the live stream's event id).",
        examples=["019ac0b1c2d3e4f5a6b7c8d9e0f1a2b3"],
    )
    kind: str = Field(description="Rule that fired.", examples=["machine_offline"])
    severity: Severity = Field(description="How urgent.", examples=["warning"])
    status: AlertStatus = Field(
        default=AlertStatus.EVENT, description="firing, resolved, or event.", examples=["firing"]
    )
    subject: str = Field(description="Machine, GPU, queue, endpoint or request.", examples=["gb1"])
    subjects: list[str] = Field(
        default_factory=list,
        description="For a grouped notification, every subject it stands for.",
        examples=[["gpu-box-01", "gpu-box-02"]],
    )
    fingerprint: str | None = Field(
        default=None,
        description="Stable key of the alert: its firing and resolved notifications share it.",
        examples=["machine_offline:gpu-box-01"],
    )
    repeat: bool = Field(default=False, description="A still-firing alert sent again.")
    message: str = Field(description="Human text.", examples=["gpu-box-01 stopped answering."])
    user: str | None = Field(default=None, description="Only this user sees it (None: operators).")
    results: TaskResults | None = Field(
        default=None, description="task_completed: what the run produced (scalars, files)."
    )
    first_seen: datetime = Field(default_factory=utcnow, description="When it started.")
    resolved_at: datetime | None = Field(default=None, description="When it ended.")
