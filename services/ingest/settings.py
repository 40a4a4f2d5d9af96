"""Ingest settings (env prefix MLBUS_INGEST_, then MLBUS_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import BusSettings


class IngestSettings(BusSettings):
    """What a production install of the HTTP bridge sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_INGEST_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8000, description="Listen port.")
    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted body.")
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
        default=("RootAdmin", "ToolAdmin"), description="Roles that make a user an admin."
    )
    id_secret: SecretStr = Field(
        default=SecretStr("mlbus-dev-id-secret"),
        description="HMAC key for opaque ids. Set it in production.",
    )
    mapping_refresh_s: float = Field(default=5.0, description="Mapping cache refresh period.")
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
