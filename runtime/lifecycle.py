"""Process lifecycle: uvloop, logging, and SIGTERM/SIGINT turned into a stop event."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop

from runtime.logs import setup_logging

log = logging.getLogger(__name__)

Main = Callable[[asyncio.Event], Awaitable[None]]


def run_service(name: str, main: Main, *, log_level: str = "INFO") -> int:
    """Run `main(stop)` until it returns; SIGTERM or SIGINT set `stop` so that the message in
    flight finishes and its offset is committed before the resources unwind."""
    setup_logging(name, log_level)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        uvloop.run(runner())
    except Exception:
        log.exception("%s stopped on an error", name)
        return 1
    log.info("%s stopped", name)
    return 0
