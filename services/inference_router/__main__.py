"""`python -m services.inference_router`: consume inference requests."""

from __future__ import annotations

import sys

from runtime.lifecycle import run_service
from services.inference_router.app import SERVICE, run
from services.inference_router.settings import InferenceRouterSettings


def main() -> int:
    """Read settings once and run until SIGTERM."""
    settings = InferenceRouterSettings()
    return run_service(SERVICE, lambda stop: run(settings, stop), settings=settings)


if __name__ == "__main__":
    sys.exit(main())
