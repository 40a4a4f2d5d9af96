"""`python -m services.enqueuer`: consume enqueue requests."""

from __future__ import annotations

import sys

from runtime.lifecycle import run_service
from services.enqueuer.app import SERVICE, run
from services.enqueuer.settings import EnqueuerSettings


def main() -> int:
    """Read settings once and run until SIGTERM."""
    settings = EnqueuerSettings()
    return run_service(SERVICE, lambda stop: run(settings, stop), settings=settings)


if __name__ == "__main__":
    sys.exit(main())
