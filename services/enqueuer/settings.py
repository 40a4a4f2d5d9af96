"""Enqueuer settings (env prefix MLBUS_ENQUEUER_; connections also MLBUS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.clearml import ClearMLSettings


class EnqueuerSettings(ClearMLSettings):
    """What a production install of the enqueuer sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_ENQUEUER_", frozen=True, extra="ignore")

    retry_attempts: int = Field(default=8, description="Attempts for transient ClearML faults.")
    concurrency: int = Field(default=64, description="Requests handled at once.")
    group: str = Field(default="mlbus-enqueuer", description="Kafka consumer group.")
    linger_ms: int = Field(default=5, description="Producer linger for task events (batching).")
