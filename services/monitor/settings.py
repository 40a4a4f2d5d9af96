"""Monitor settings (env prefix MLBUS_MONITOR_, then MLBUS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.clearml import ClearMLSettings


class MonitorSettings(ClearMLSettings):
    """What a production install of the monitor sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_MONITOR_", frozen=True, extra="ignore")

    poll_s: float = Field(default=2.0, gt=0, description="Pause between two ClearML polls.")
    retry_attempts: int = Field(default=8, description="Attempts for a transient handler fault.")
    retry_cap_s: float = Field(default=5.0, description="Longest pause between attempts.")
    group: str = Field(default="mlbus-monitor", description="Kafka consumer group.")
