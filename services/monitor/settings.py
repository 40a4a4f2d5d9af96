"""Monitor settings (env prefix MLBUS_MONITOR_, then MLBUS_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import BusSettings


class MonitorSettings(BusSettings):
    """What a production install of the monitor sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_MONITOR_", frozen=True, extra="ignore")

    clearml_api_host: str = Field(default="http://127.0.0.1:8008", description="ClearML API.")
    clearml_access_key: str = Field(default="mlbus-dev-access", description="API access key.")
    clearml_secret_key: SecretStr = Field(
        default=SecretStr("mlbus-dev-secret"), description="API secret key."
    )
    clearml_timeout_s: float = Field(default=10.0, description="Per-call timeout.")
    poll_s: float = Field(default=2.0, gt=0, description="Pause between two ClearML polls.")
    retry_attempts: int = Field(default=8, description="Attempts for a transient handler fault.")
    retry_cap_s: float = Field(default=5.0, description="Longest pause between attempts.")
    group: str = Field(default="mlbus-monitor", description="Kafka consumer group.")
