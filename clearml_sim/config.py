"""Settings of one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ACCESS_KEY = "mlbus-dev-access"
DEFAULT_SECRET_KEY = "mlbus-dev-secret"  # noqa: S105  (a published development default)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a simulator instance is built from; read once at the edge and passed down."""

    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    demo: bool = True
    task_duration_s: float = 3.0
    agent_tick_s: float = 0.1
    report_interval_s: float = 5.0
    worker_timeout_s: float = 600.0
    #: The non-responsive task watchdog's threshold (the server's default: 2 h).
    watchdog_s: float = 7200.0
    stats_retention: int = 4320
    token_ttl_s: int = 30 * 24 * 3600
    api_version: str = "2.31"
    server_version: str = "2.0.0"
    company_id: str = "d1bd92a3b039400cbafc60a7a5b1e52b"
    company_name: str = "mlbus"
    user_id: str = "mlbus-sim-user"
    user_name: str = "mlbus simulator"
