"""Enqueuer settings (env prefix MLBUS_ENQUEUER_, then MLBUS_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import BusSettings


class EnqueuerSettings(BusSettings):
    """What a production install of the enqueuer sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_ENQUEUER_", frozen=True, extra="ignore")

    clearml_api_host: str = Field(default="http://127.0.0.1:8008", description="ClearML API.")
    clearml_access_key: str = Field(default="mlbus-dev-access", description="API access key.")
    clearml_secret_key: SecretStr = Field(
        default=SecretStr("mlbus-dev-secret"), description="API secret key."
    )
    clearml_timeout_s: float = Field(default=10.0, description="Per-call timeout.")
    retry_attempts: int = Field(default=8, description="Attempts for transient ClearML faults.")
    retry_cap_s: float = Field(default=5.0, description="Longest pause between attempts.")
    concurrency: int = Field(default=64, description="Requests handled at once.")
    group: str = Field(default="mlbus-enqueuer", description="Kafka consumer group.")
    linger_ms: int = Field(default=5, description="Producer linger for task events (batching).")
