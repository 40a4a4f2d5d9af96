"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

import os
import socket

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

SHARED_PREFIX = "MLBUS_"


class BusSettings(BaseSettings):
    """Where Kafka and MongoDB are, and how this process identifies itself.

    A field is read from the service's own prefix first (`MLBUS_ENQUEUER_KAFKA_BOOTSTRAP`), then
    from the prefix all services share (`MLBUS_KAFKA_BOOTSTRAP`), which the local stack sets.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    topic_prefix: str = Field(default="", description="Prefix for every topic name.")
    mongo_uri: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017/"), description="MongoDB URI."
    )
    mongo_db: str = Field(default="mlbus", description="Database name.")
    metrics_port: int = Field(default=0, description="Prometheus port for workers (0: none).")
    instance: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        description="Instance name; names this process's reply topic and consumer client id.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix=SHARED_PREFIX)
        return (init_settings, env_settings, shared, dotenv_settings, file_secret_settings)
