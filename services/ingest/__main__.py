"""`python -m services.ingest`: serve the HTTP bridge."""

from __future__ import annotations

import sys

import uvicorn

from runtime.logs import setup_logging
from services.ingest.app import SERVICE, create_app
from services.ingest.settings import IngestSettings


def main() -> int:
    """Read settings once, serve until SIGTERM/SIGINT (uvicorn drains in-flight requests)."""
    settings = IngestSettings()
    setup_logging(SERVICE, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
