"""Notifier settings (env prefix MLBUS_NOTIFIER_; connections also MLBUS_): rule thresholds,
grouping and repeat windows, webhooks."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from runtime.settings import WorkerSettings
from schemas.notifications import Notification, Severity


class Webhook(BaseModel):
    """One webhook (for example a Node-RED `http in` node): every notification that passes its
    filters is POSTed to it as JSON. An empty filter lets everything through."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="Where to POST.", examples=["http://nodered:1880/mlbus"])
    name: str | None = Field(
        default=None, description="Names its consumer group; a hash of the URL by default."
    )
    kinds: tuple[str, ...] = Field(default=(), description="Only these kinds.")
    severities: tuple[Severity, ...] = Field(default=(), description="Only these severities.")
    users: tuple[str, ...] = Field(
        default=(), description="Only notifications for these users (task events)."
    )

    @property
    def label(self) -> str:
        """Stable name: its consumer group and metrics label."""
        return self.name or hashlib.sha256(self.url.encode()).hexdigest()[:10]

    def wants(self, notification: Notification) -> bool:
        """Whether `notification` passes the filters."""
        return (
            (not self.kinds or notification.kind in self.kinds)
            and (not self.severities or notification.severity in self.severities)
            and (not self.users or notification.user in self.users)
        )


class NotifierSettings(WorkerSettings):
    """What a production install of the notifier sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_NOTIFIER_", frozen=True, extra="ignore")

    group: str = Field(default="mlbus-notifier", description="Prefix of its consumer groups.")
    tick_s: float = Field(default=0.1, gt=0, description="Period of timers (offline, grouping).")
    missed_heartbeats: int = Field(default=3, ge=1, description="Missed: machine offline.")
    heartbeat_max_age_s: float = Field(
        default=300.0, gt=0, description="Older heartbeats (backlog, history) are ignored."
    )
    gpu_busy_pct: float = Field(default=90.0, description="GPU utilisation above: saturated...")
    gpu_busy_for_s: float = Field(default=60.0, ge=0, description="...when it lasts this long.")
    gpu_memory_pct: float = Field(default=95.0, description="GPU memory use above: nearly full.")
    gpu_temperature_c: float = Field(default=85.0, description="GPU temperature above: hot.")
    queue_max_length: int = Field(default=20, ge=0, description="Queue length above: backlog.")
    queue_max_wait_s: float = Field(
        default=600.0, gt=0, description="Oldest entry waiting longer: backlog."
    )
    group_wait_s: float = Field(
        # 0.5 s: a storm's alerts (machines whose last heartbeats were spread over an interval)
        # keep arriving far closer together than that, and one alone is told within a second.
        default=0.5,
        ge=0,
        description="Alerts of one kind are sent together once none joined for this long...",
    )
    group_max_wait_s: float = Field(
        default=10.0, ge=0, description="...or once the first has waited this long."
    )
    group_max_size: int = Field(default=500, ge=1, description="Most subjects per notification.")
    repeat_interval_s: float = Field(
        default=4 * 3600.0, gt=0, description="A still-firing alert is repeated this often."
    )
    webhooks: tuple[Webhook, ...] = Field(
        default=(), description='JSON list, e.g. [{"url": "http://nodered:1880/mlbus"}].'
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="Whole POST, per attempt.")
    webhook_connect_timeout_s: float = Field(default=2.0, gt=0, description="TCP connect.")
    webhook_attempts: int = Field(default=6, ge=1, description="Attempts before dead letter.")
    webhook_retry_cap_s: float = Field(default=10.0, gt=0, description="Longest pause.")
    webhook_max_age_s: float = Field(
        default=3600.0, gt=0, description="Older notifications are not sent (a new webhook)."
    )
    webhook_concurrency: int = Field(default=8, ge=1, description="POSTs in flight per webhook.")
