"""Ingest settings (env prefix MLBUS_INGEST_; connections also MLBUS_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import BusSettings
from services.ingest.roles import ROLE_CLIENTS, SNAP4CITY_ROLES


class IngestSettings(BusSettings):
    """What a production install of the HTTP bridge sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_INGEST_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8000, description="Listen port.")
    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted body.")
    publish_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a request waits for Kafka's acknowledgement before it is 503 "
        "bus_unavailable (an on-demand call waits at most its endpoint's timeout).",
    )
    idempotency_ttl_s: float = Field(
        default=86_400.0, gt=0, description="How long an Idempotency-Key keeps its answer."
    )
    enqueue_running_s: float = Field(
        default=30.0,
        gt=0,
        description="How long an enqueue with an Idempotency-Key may run before a retry with "
        "that key may run it again (under the same request id).",
    )
    unseen_after_s: float = Field(
        default=60.0,
        gt=0,
        description="An accepted enqueue that no worker has recorded after this long is reported "
        "as not picked up yet (the enqueuer is down or far behind).",
    )
    clearml_files_host: str = Field(
        default="http://127.0.0.1:8081",
        description="ClearML's file server: artifacts are streamed from URIs under it, and "
        "from nowhere else.",
    )
    artifact_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for the file server to start answering."
    )
    jwks_url: str = Field(
        default="http://127.0.0.1:8090/realms/mlbus/protocol/openid-connect/certs",
        description="JWKS of the token issuer (Keycloak realm certs endpoint).",
    )
    issuer: str = Field(
        default="http://127.0.0.1:8090/realms/mlbus", description="Expected `iss` claim."
    )
    audience: str | None = Field(default=None, description="Expected `aud` (None: not checked).")
    leeway_s: int = Field(default=30, description="Clock skew tolerated on exp/nbf/iat.")
    admin_roles: tuple[str, ...] = Field(
        default=(),
        description="More roles that make a user an admin (older setting; prefer role_map).",
    )
    role_map: dict[str, Literal["admin", "operator", "user"]] = Field(
        default_factory=lambda: dict(SNAP4CITY_ROLES),
        description="Token role -> mlbus role. Default Snap4City's: RootAdmin and ToolAdmin "
        "admin, AreaManager operator, Manager user; every verified caller is at least a user.",
    )
    role_clients: tuple[str, ...] = Field(
        default=ROLE_CLIENTS,
        description="Clients whose client roles (resource_access.<client>.roles) count, besides "
        "the realm roles; other clients' roles are ignored.",
    )
    id_secret: SecretStr = Field(
        default=SecretStr("mlbus-dev-id-secret"),
        description="HMAC key for opaque ids. Set it in production.",
    )
    mapping_refresh_s: float = Field(default=5.0, description="Mapping cache refresh period.")
    resources_cache_s: float = Field(
        default=2.0, ge=0, description="How long resource and queue states are cached."
    )
    auto_state_max_age_s: float = Field(
        default=180.0,
        gt=0,
        description="`auto` ignores queue states older than this (the monitor rewrites unchanged "
        "ones every minute; older means the monitor is down).",
    )
    enqueue_linger_ms: int = Field(
        default=5,
        description="Producer linger on the enqueue path: batches produce requests under load "
        "(its latency target is p99 < 250 ms); the inference path keeps 0.",
    )
    stream_buffer: int = Field(
        default=5000, description="Notifications kept in memory for stream resume."
    )
    stream_queue: int = Field(
        default=1000, description="Notifications a slow stream client may fall behind by."
    )
    # Access: where callers may come from (see access.py).
    allowed_networks: tuple[str, ...] = Field(
        default=(
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ),
        description="Client networks allowed at all (CIDRs); the default is loopback and "
        "private networks. Set ['0.0.0.0/0', '::/0'] to allow any address.",
    )
    role_networks: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Per role (admin, operator, user), networks its holders must also come "
        'from, e.g. {"admin": ["10.1.0.0/16"]}.',
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="Networks of proxies whose X-Forwarded-For is believed (none by default).",
    )
    refusal_alert_count: int = Field(
        default=10, ge=1, description="Refusals from one address that raise a notification."
    )
    refusal_alert_window_s: float = Field(
        default=300.0,
        gt=0,
        description="Window of refusal_alert_count, and at most one "
        "notification per address per window.",
    )
    # Quotas (see quotas.py).
    quota_window_s: float = Field(default=60.0, gt=0, description="Window of the rate quotas.")
    rate_quotas: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            "enqueue": {"user": 60, "operator": 120, "admin": 600},
            "ondemand": {"user": 1200, "operator": 2400, "admin": 12000},
        },
        description="Per path, per role: requests allowed in any quota_window_s.",
    )
    user_rate_quotas: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description='Per user name, per path: overrides the role quota, e.g. {"alice": '
        '{"enqueue": 10}}.',
    )
    task_quotas: dict[str, int] = Field(
        default_factory=lambda: {"user": 20, "operator": 50, "admin": 200},
        description="Per role: enqueued tasks that may be queued or running at once.",
    )
    task_slot_max_age_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="A task holds its user's slot at most this long (ClearML may delete or "
        "reset a task, which then never ends).",
    )
    user_task_quotas: dict[str, int] = Field(
        default_factory=dict, description="Per user name: overrides the role's task quota."
    )
    shared_quotas: bool = Field(
        default=True,
        description="Count quotas in MongoDB, so they hold across every ingest copy (false: "
        "each process counts its own).",
    )
    quota_store_timeout_s: float = Field(
        default=0.25,
        gt=0,
        description="How long a quota check waits for MongoDB before this process counts alone.",
    )
