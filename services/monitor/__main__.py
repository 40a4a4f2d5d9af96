"""`python -m services.monitor`: follow enqueued tasks until they end."""

from __future__ import annotations

import sys

from runtime.lifecycle import run_service
from services.monitor.app import SERVICE, run
from services.monitor.settings import MonitorSettings


def main() -> int:
    """Read settings once and run until SIGTERM."""
    settings = MonitorSettings()
    return run_service(SERVICE, lambda stop: run(settings, stop), settings=settings)


if __name__ == "__main__":
    sys.exit(main())
