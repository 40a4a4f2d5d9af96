"""`python -m services.console`: serve the web console."""

from __future__ import annotations

import sys

import uvicorn

from runtime.logs import setup_logging
from services.console.app import SERVICE, create_app
from services.console.settings import ConsoleSettings


def main() -> int:
    """Read settings once, serve until SIGTERM/SIGINT."""
    settings = ConsoleSettings()
    setup_logging(SERVICE, settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
