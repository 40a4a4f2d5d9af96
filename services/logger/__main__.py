"""`python -m services.logger`: keep the log read models current."""

from __future__ import annotations

import sys

from runtime.lifecycle import run_service
from services.logger.app import SERVICE, run
from services.logger.settings import LoggerSettings


def main() -> int:
    """Read settings once and run until SIGTERM."""
    settings = LoggerSettings()
    return run_service(SERVICE, lambda stop: run(settings, stop), settings=settings)


if __name__ == "__main__":
    sys.exit(main())
