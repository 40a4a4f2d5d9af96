"""Monitor settings (env prefix MLBUS_MONITOR_; connections also MLBUS_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from runtime.clearml import ClearMLSettings


class MonitorSettings(ClearMLSettings):
    """What a production install of the monitor sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_MONITOR_", frozen=True, extra="ignore")

    poll_s: float = Field(default=2.0, gt=0, description="Pause between two ClearML polls.")
    vanish_polls: int = Field(
        default=5,
        ge=1,
        description="Polls in a row without a followed task (deleted) or with it back in "
        "`created` (reset) after which its request ends as stopped.",
    )
    error_log_lines: int = Field(
        default=100, ge=1, le=1000, description="Console log events read for a failed run's error."
    )
    group: str = Field(default="mlbus-monitor", description="Kafka consumer group.")
    group_session_s: float = Field(
        default=6.0,
        ge=6.0,
        le=300.0,
        description="Session timeout of the task-events consumer group: a copy killed outright "
        "keeps its partitions, and so its requests, this long before another copy takes them "
        "over (6 s is the broker's least by default, `group.min.session.timeout.ms`).",
    )
    group_heartbeat_s: float = Field(
        default=1.0,
        gt=0,
        description="Heartbeat interval of that consumer (below a third of the session).",
    )
    resources: bool = Field(
        default=True, description="Also poll workers and queues into resource and queue state."
    )
    elect: bool = Field(
        default=True,
        description="With many copies, the resource poller and heartbeat feed run in one, "
        "elected through Kafka's group membership (runtime/leader.py); false: in this copy, "
        "without election.",
    )
    resource_poll_s: float = Field(
        default=5.0, gt=0, description="Pause between two polls of ClearML workers and queues."
    )
    resource_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="Unchanged states are published and stored again this often (a refresh).",
    )
    resource_retry_attempts: int = Field(
        default=3, ge=1, description="Attempts per ClearML call in one resource tick."
    )
    heartbeat_missed: int = Field(
        default=3, ge=1, description="Missed heartbeat intervals after which a machine is offline."
    )
    heartbeat_lookback_s: float = Field(
        default=60.0, ge=0, description="On start, read heartbeats this far back."
    )
    worker_fresh_s: float = Field(
        default=90.0,
        gt=0,
        description="A ClearML worker counts while its last report is this recent "
        "(agents report every 30 s; ClearML itself keeps dead workers 10 minutes).",
    )
    free_gpu_util_pct: float = Field(
        default=10.0, description="A GPU is free below this utilisation..."
    )
    free_gpu_memory_pct: float = Field(
        default=10.0, description="...and below this share of its memory used."
    )
    queue_metrics_window_s: int = Field(
        default=600, ge=120, description="Window of queues.get_queue_metrics (average wait)."
    )
    queue_metrics_interval_s: int = Field(
        default=60, ge=40, description="Bucket of queues.get_queue_metrics (ClearML: >= 40 s)."
    )

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Self:
        if self.group_heartbeat_s * 3 > self.group_session_s:
            raise ValueError("group_heartbeat_s must be at most a third of group_session_s")
        return self
