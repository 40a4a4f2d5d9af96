"""HTTP response bodies of the logs, dashboard and audit routes (`/v1/admin/...`, `/v1/logs`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.api import TimelineEntry
from schemas.base import JSONValue, Model
from schemas.collections import TASK_MAPPINGS


class LogEntry(Model):
    """One request's log, enqueue or on-demand (fields of the other path are null)."""

    request_id: str = Field(description="The request.", examples=["5f0c8a9e2b7d4c1f"])
    path: str = Field(description="'enqueue' or 'ondemand'.", examples=["enqueue"])
    user: str | None = Field(default=None, description="Requester.", examples=["alice"])
    target: str | None = Field(
        default=None,
        description="Opaque task id (enqueue) or '<machine id>/<endpoint>' (on-demand).",
        examples=["3b1f0e3c9d2a4e5f"],
    )
    status: str = Field(description="Latest state.", examples=["completed"])
    accepted_at: datetime | None = Field(default=None, description="When ingest accepted it.")
    error: str | None = Field(default=None, description="What went wrong, in words.")
    latency_ms: dict[str, float | None] = Field(
        default_factory=dict,
        description="Milliseconds per step; `total` is accepted → queued or → answered.",
        examples=[{"total": 41.5}],
    )
    task_id: str | None = Field(default=None, description="Opaque task id (enqueue).")
    queue: str | None = Field(default=None, description="Queue (enqueue).", examples=["gpu-a100"])
    queue_watched: bool | None = Field(default=None, description="A worker listened (enqueue).")
    history: list[TimelineEntry] = Field(default_factory=list, description="Timeline (enqueue).")
    machine_id: str | None = Field(default=None, description="Opaque machine id (on-demand).")
    endpoint: str | None = Field(default=None, description="Endpoint (on-demand).")
    version: str | None = Field(default=None, description="Endpoint version (on-demand).")
    http_status: int | None = Field(default=None, description="HTTP status answered (on-demand).")
    error_code: str | None = Field(default=None, description="Stable error code (on-demand).")
    finished_at: datetime | None = Field(default=None, description="When it was answered.")
    admin: dict[str, JSONValue] | None = Field(
        default=None,
        description="Internal ids and addresses (admins only): template_task_id, clone_id, "
        "serving_task_id, replica.",
    )


class LogPage(Model):
    """A page of logs, newest first."""

    items: list[LogEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next (older) page; null at the end. A page may "
        "hold fewer items than `limit` while this is set: keep following it.",
    )


class Period(Model):
    """Requests accepted in one hour or day, on one path."""

    start: str = Field(description="`YYYY-MM-DDTHH` or `YYYY-MM-DD` (UTC).")
    count: int = Field(default=0, description="Requests decided (queued / enqueue failed; calls).")
    errors: int = Field(default=0, description="Of those, failed.")
    success_rate: float | None = Field(default=None, description="1 - errors / count.")
    p50_ms: float | None = Field(default=None, description="Latency percentile (bucketed).")
    p95_ms: float | None = Field(default=None, description="Latency percentile (bucketed).")
    p99_ms: float | None = Field(default=None, description="Latency percentile (bucketed).")
    mean_ms: float | None = Field(default=None, description="Mean latency.")
    statuses: dict[str, int] = Field(
        default_factory=dict, description="Requests that reached each status (task lifecycle)."
    )


class PathActivity(Model):
    """One path's requests per hour and per day, oldest first."""

    hours: list[Period] = Field(description="The last `hours` hours.")
    days: list[Period] = Field(description="The last `days` days.")


class Ranked(Model):
    """A user, task or endpoint and its request count over the `days` window."""

    name: str = Field(description="User name, opaque task id or '<machine>/<endpoint>'.")
    count: int = Field(description="Requests.")


class DashboardSummary(Model):
    """What the admin dashboard shows."""

    serving_machines: int = Field(description="Registered serving machines.")
    endpoints: int = Field(description="Mapped endpoints.")
    tasks: int = Field(description="Enqueueable task mappings.")
    machines_online: int = Field(description="GPU machines online (resource state).")
    gpus_online: int = Field(description="GPUs on machines online.")
    enqueue: PathActivity = Field(description="Enqueue requests.")
    ondemand: PathActivity = Field(description="On-demand calls.")
    top_users: list[Ranked] = Field(description="Both paths.")
    top_tasks: list[Ranked] = Field(description="Enqueue targets.")
    top_endpoints: list[Ranked] = Field(description="On-demand targets.")
    at: datetime = Field(description="When this summary was computed.")


class AuditEntry(Model):
    """One admin change: who, when, the document before and after (null: did not exist)."""

    id: str = Field(description="Time-ordered id.", examples=["0193a1b2c3d4000000a1b2c3d4e5f6a7"])
    at: datetime = Field(description="When (UTC).")
    actor: str = Field(description="Admin who made the change.", examples=["admin"])
    action: str = Field(description="'create' or 'delete'.", examples=["create"])
    kind: str = Field(
        description="'task_mappings', 'serving_machines' or 'endpoint_mappings'.",
        examples=[TASK_MAPPINGS],
    )
    key: str = Field(description="Id of the changed mapping.")
    before: dict[str, JSONValue] | None = Field(default=None, description="Before the change.")
    after: dict[str, JSONValue] | None = Field(default=None, description="After the change.")
    request_id: str | None = Field(default=None, description="HTTP request that made it.")


class AuditPage(Model):
    """A page of the audit trail, newest first."""

    items: list[AuditEntry] = Field(description="Newest first.")
    next_before: str | None = Field(default=None, description="Pass as `before` for older ones.")
