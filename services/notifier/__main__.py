"""`python -m services.notifier`: watch the cluster and deliver notifications."""

from __future__ import annotations

import sys

from runtime.lifecycle import run_service
from services.notifier.app import SERVICE, run
from services.notifier.settings import NotifierSettings


def main() -> int:
    """Read settings once and run until SIGTERM."""
    settings = NotifierSettings()
    return run_service(SERVICE, lambda stop: run(settings, stop), settings=settings)


if __name__ == "__main__":
    sys.exit(main())
