"""Console settings (env prefix MLBUS_CONSOLE_, then MLBUS_ for what every service shares: the
console uses MongoDB's, for its sessions, and none of Kafka's)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import BusSettings


class ConsoleSettings(BusSettings):
    """What a production install of the console sets."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_CONSOLE_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8001, description="Listen port.")
    public_url: str = Field(
        default="http://127.0.0.1:8001",
        description="The console's URL as browsers reach it (the OIDC redirect URI's base).",
    )
    ingest_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Ingest's JSON API: every read and change goes through it, with the "
        "signed-in person's token, so the API's own role and privacy checks apply.",
    )
    ingest_public_url: str | None = Field(
        default=None,
        description="Ingest as browsers reach it (the API docs link); default ingest_url.",
    )
    issuer: str = Field(
        default="http://127.0.0.1:8090/realms/mlbus",
        description="The Keycloak realm (OpenID Connect issuer).",
    )
    client_id: str = Field(default="mlbus-console", description="The console's OIDC client.")
    client_secret: SecretStr = Field(
        default=SecretStr("mlbus-console-secret"),
        description="The confidential client's secret. Set it in production.",
    )
    session_idle_s: float = Field(
        default=8 * 3600.0, gt=0, description="A session unused this long is forgotten."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Send the cookies over HTTPS only (always on when public_url is https).",
    )
    api_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of calls to ingest.")
    export_page_pause_s: float = Field(
        default=0.02,
        ge=0,
        description="Pause between the API pages of a CSV export (200 rows each): bounds what "
        "an export asks of ingest (at most ~10,000 rows/s) beside live traffic.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: when asked, and always when browsers reach the console by
        https (a session cookie must never travel in clear once it can avoid it)."""
        return self.cookie_secure or self.public_url.lower().startswith("https://")

    @property
    def docs_url(self) -> str:
        """The API docs (Swagger UI at ingest's /docs)."""
        return f"{(self.ingest_public_url or self.ingest_url).rstrip('/')}/docs"
