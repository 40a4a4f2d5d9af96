"""Workers as real processes, for the tests where a crash must be a crash.

A worker run as a task of the test's event loop and cancelled still runs its shutdown code: its
`finally` blocks finish the batch in hand, commit offsets, flush producers. A process killed
with SIGKILL runs none of it, as when a machine dies: what it had not committed is redelivered,
what it had not flushed is lost. `running_process` starts `python -m services.<name>` with the
test's settings in its environment (the same settings object a task-run worker takes) and waits
until its loop runs (`/readyz`); `kill()` is mlbus's `Child.kill` (SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from mlbus.servers.process import Child, free_port


def settings_env(settings: BaseSettings) -> dict[str, str]:
    """The environment that makes a service read `settings` (under the class's own prefix)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name, raw in settings.model_dump().items():
        value = raw.get_secret_value() if isinstance(raw, SecretStr) else raw
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"{prefix}{name}".upper()] = text
    return env


@dataclass
class Process:
    """A worker process; `kill` is a crash (SIGKILL), leaving the block a clean stop."""

    child: Child
    readyz: str
    killed: bool = False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing more is committed or flushed."""
        self.killed = True
        self.child.kill()

    def alive(self) -> bool:
        return self.child.alive()

    async def ready(self) -> bool:
        async with httpx.AsyncClient(timeout=1.0) as client:
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get(self.readyz)).status_code == 200
        return False


@contextlib.asynccontextmanager
async def running_process(
    service: str, settings: BaseSettings, *, ready_within_s: float = 60.0
) -> AsyncIterator[Process]:
    """`python -m services.<service>` with `settings`, once its loop runs; stopped with SIGTERM
    at the end of the block (a stop that fails, or a process that died unasked, fails the test)."""
    port = free_port()
    settings = settings.model_copy(update={"metrics_port": port, "metrics_host": "127.0.0.1"})
    logs = Path(tempfile.mkdtemp(prefix=f"mlbus-{service}-"))
    argv = [sys.executable, "-m", f"services.{service}"]
    child = Child(service, argv, logs / f"{service}.log", settings_env(settings))
    child.start()
    process = Process(child, f"http://127.0.0.1:{port}/readyz")
    try:
        deadline = time.monotonic() + ready_within_s
        while not await process.ready():
            assert child.alive(), f"{service} exited at start:\n{child.tail()}"
            assert time.monotonic() < deadline, f"{service} not ready:\n{child.tail()}"
            await asyncio.sleep(0.1)
        yield process
        assert process.killed or child.alive(), f"{service} died unasked:\n{child.tail()}"
    finally:
        code = await asyncio.to_thread(child.stop, 30.0)
    if not process.killed:
        assert code == 0, f"{service} stopped with {code}:\n{child.tail()}"
