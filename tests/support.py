"""Test support: real servers for the session, an ASGI app served in a thread, waiting helpers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn

from mlbus.devissuer import SigningKey

T = TypeVar("T")


class ThreadedServer:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a daemon thread (lifespan on).

    `app` may be a factory taking the server's URL, for apps that must know where they live."""

    def __init__(self, app: Any, name: str, *, factory: bool = False, port: int = 0) -> None:
        self.app, self.name, self.factory, self.port = app, name, factory, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> ThreadedServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # 0: any free port; a fixed one to restart on it
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        app = self.app(self.url) if self.factory else self.app
        # proxy_headers off, as in production: ingest decides itself whose X-Forwarded-For to
        # believe (uvicorn would otherwise take it from any loopback peer).
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", proxy_headers=False
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)


@dataclass
class Issuer:
    """The dev issuer serving JWKS; signs tokens for tests."""

    key: SigningKey
    url: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/mlbus"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def token(self, user: str = "alice", roles: list[str] | None = None, **claims: Any) -> str:
        return self.key.sign(self.issuer, user, roles or ["Manager"], **claims)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 20.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def queues_seen(db: Any, *names: str, timeout_s: float = 60.0) -> None:
    """Wait until the monitor's read model of the cluster's queues lists `names`: a mapping is
    checked against it, and a test's monitor may not have polled its simulator yet (the read
    model may still hold an earlier test's queues)."""
    from schemas.collections import QUEUES

    async def probe() -> bool:
        docs = await db[QUEUES].find({}, {"name": 1}).to_list(None)
        return set(names) <= {d.get("name") for d in docs}

    await eventually(probe, timeout_s=timeout_s, what=f"the monitor to see queues {names}")
