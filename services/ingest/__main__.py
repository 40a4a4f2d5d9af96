"""`python -m services.ingest`: serve the HTTP bridge."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from runtime import tracing
from runtime.lifecycle import observe
from services.ingest.app import SERVICE, create_app
from services.ingest.settings import IngestSettings


class _Server(uvicorn.Server):
    """uvicorn, ending the open notification streams as soon as a stop signal comes.

    uvicorn lets open responses finish before it shuts down; a stream never finishes by itself,
    so without this every SIGTERM would wait the whole graceful timeout.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        ingest = getattr(self._app.state, "ingest", None)
        if ingest is not None:
            with contextlib.suppress(RuntimeError):  # no loop running: nothing is streaming
                asyncio.get_running_loop().call_soon_threadsafe(ingest.notifications.close_streams)
        super().handle_exit(sig, frame)


def main() -> int:
    """Read settings once, serve until SIGTERM/SIGINT (uvicorn drains in-flight requests)."""
    settings = IngestSettings()
    observe(SERVICE, settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        # Ingest decides whose X-Forwarded-For to believe (settings.trusted_proxies); uvicorn's
        # own rewrite would trust any loopback peer's header before ingest sees the request.
        proxy_headers=False,
    )
    try:
        _Server(config, app).run()
    finally:
        tracing.shutdown()  # the spans still batched are sent
    return 0


if __name__ == "__main__":
    sys.exit(main())
