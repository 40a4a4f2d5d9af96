"""Inference router settings (env prefix MLBUS_INFERENCE_ROUTER_; connections also MLBUS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.settings import WorkerSettings


class InferenceRouterSettings(WorkerSettings):
    """What a production install of the inference router sets."""

    model_config = SettingsConfigDict(
        env_prefix="MLBUS_INFERENCE_ROUTER_", frozen=True, extra="ignore"
    )

    group: str = Field(default="mlbus-inference-router", description="Kafka consumer group.")
    concurrency: int = Field(default=256, description="Requests handled at once.")
    poll_timeout_ms: int = Field(default=50, description="Longest wait of one empty poll.")
    mapping_refresh_s: float = Field(default=5.0, description="Reload of machines and mappings.")
    breaker_failures: int = Field(default=5, description="Failures in a row that open a breaker.")
    breaker_cooldown_s: float = Field(default=10.0, description="Time a replica stays out.")
    health_interval_s: float = Field(default=5.0, description="Period of /health probes (0: off).")
    connect_timeout_s: float = Field(default=2.0, description="TCP connect timeout to a replica.")
    read_timeout_s: float = Field(default=30.0, description="Cap on one model call's wait.")
    max_connections: int = Field(
        default=32,
        description="Pooled connections, all replicas (more calls than this at once wait for "
        "a free connection).",
    )
    keepalive_s: float = Field(
        default=4.0,
        description="Idle time after which a pooled connection is closed; under the usual 5 s "
        "server keep-alive (uvicorn's), so a call never lands on a connection the node is closing.",
    )
    commit_interval_s: float = Field(
        default=0.5,
        description="Offset commits at most this often: each is a broker write, and a replay "
        "after a crash is cheap (past-deadline requests are skipped, replies are by request id).",
    )
    replay_check_after_s: float = Field(
        default=1.0,
        ge=0,
        description="A request this much older than usual when consumed (redelivered after a "
        "rebalance or a restart, or a backlog) is looked up in ondemand_logs first: one that "
        "another router already answered is not sent to the model again.",
    )
    dedupe_grace_s: float = Field(
        default=5.0, description="How long past its deadline a request id is remembered."
    )
    retry_attempts: int = Field(default=4, description="Attempts for transient bus/store faults.")
    retry_cap_s: float = Field(default=1.0, description="Longest pause between attempts.")
