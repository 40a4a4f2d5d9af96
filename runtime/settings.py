"""Settings shared by every service; each service subclasses with its own env prefix.

BusSettings          where Kafka and MongoDB are, the topic prefix, and this process's name,
│                    logs, metrics and traces: the only fields that fall back to `MLBUS_`
└── WorkerSettings   what every consuming worker has: its consumer group and retry bounds
"""

from __future__ import annotations

import os
import socket
from typing import Any, ClassVar, Literal

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

    A field is read from the service's own prefix first (`MLBUS_ENQUEUER_KAFKA_BOOTSTRAP`). The
    fields named in `shared_fields`, and only those, are then read from the prefix all services
    share (`MLBUS_KAFKA_BOOTSTRAP`), which the local stack and the Kubernetes manifests set once:
    the connections (Kafka and its credentials, MongoDB, the topic prefix) and what a pod sets
    once for its one process (instance name, metrics address and port, log level and format,
    tracing). A service's own fields (its consumer group, retries, thresholds) never fall back,
    so `MLBUS_GROUP` cannot give several services one consumer group.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore")
    shared_fields: ClassVar[frozenset[str]] = frozenset(
        {
            "kafka_bootstrap",
            "kafka_security_protocol",
            "kafka_sasl_mechanism",
            "kafka_username",
            "kafka_password",
            "topic_prefix",
            "mongo_uri",
            "mongo_db",
            "instance",
            "metrics_port",
            "metrics_host",
            "log_level",
            "log_format",
            "otlp_endpoint",
            "trace_sample_ratio",
        }
    )

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
    trace_sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Share of traces recorded when tracing is on (a request's spans follow the "
        "decision taken where its trace starts).",
    )
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
        shared = _SharedEnvSource(settings_cls, env_prefix=SHARED_PREFIX)
        return (init_settings, env_settings, shared, dotenv_settings, file_secret_settings)


class _SharedEnvSource(EnvSettingsSource):
    """The `MLBUS_` variables of the settings class's `shared_fields`, and no others."""

    def __call__(self) -> dict[str, Any]:
        shared: frozenset[str] = getattr(self.settings_cls, "shared_fields", frozenset())
        return {name: value for name, value in super().__call__().items() if name in shared}


class WorkerSettings(BusSettings):
    """What every consuming worker has; each one names its own consumer group by default."""

    group: str = Field(default="mlbus-worker", description="Kafka consumer group.")
    retry_attempts: int = Field(default=8, description="Attempts for a transient handler fault.")
    retry_cap_s: float = Field(default=5.0, description="Longest pause between attempts.")
