"""Logger settings (env prefix MLBUS_LOGGER_; connections also MLBUS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.settings import WorkerSettings


class LoggerSettings(WorkerSettings):
    """What a production install of the logger sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_LOGGER_", frozen=True, extra="ignore")

    group: str = Field(
        default="mlbus-logger",
        description="Kafka consumer group prefix ('-logs' and '-tasks' are appended).",
    )
    write_concurrency: int = Field(
        default=8,
        ge=1,
        description="Read-model writes in flight at once (FerretDB is slow with "
        "many updates in one bulk_write, so they go one by one, a few at a time).",
    )
    max_batch: int = Field(default=500, ge=1, description="Facts folded in one group commit.")
    register_views: bool = Field(
        default=True, description="On real MongoDB, also create the `*_raw` views (createView)."
    )
