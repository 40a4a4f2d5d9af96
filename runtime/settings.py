"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

import os
import socket
from typing import Literal

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
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text (local runs) or one JSON object a line (clusters; fields in "
        "runtime/logs.py).",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address a worker's /metrics, /healthz and /readyz listen on (0.0.0.0 in a "
        "pod).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        default="PLAINTEXT", description="How clients talk to Kafka (SASL_* with a Kafka user)."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism (Strimzi's KafkaUser: SCRAM-SHA-512)."
    )
    kafka_username: str = Field(default="", description="Kafka user (SASL), when ACLs are on.")
    kafka_password: SecretStr = Field(default=SecretStr(""), description="Its password.")
    otlp_endpoint: str = Field(
        default="",
        description="OTLP/HTTP traces endpoint (http://collector:4318/v1/traces); empty: tracing "
        "off, at no cost.",
    )

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
