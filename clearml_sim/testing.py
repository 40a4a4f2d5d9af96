"""Test helpers: a simulator served in a background thread, or called in-process.

- ``with run_simulator() as sim: sim.url`` starts uvicorn on a free 127.0.0.1 port. The context
  manager is synchronous, so it works in plain and async tests alike (start and stop block for a
  few milliseconds); ``async with SimServer(...)`` does the blocking parts in a worker thread.
- :class:`InProcessApi` calls the ASGI app through ``httpx.ASGITransport`` (no sockets, no agent
  loop), and :class:`FakeClock` drives agents and stats without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from clearml_sim.app import SimApp
from clearml_sim.config import SimConfig
from clearml_sim.errors import ApiError
from clearml_sim.simulator import Simulator
from clearml_sim.state import SimState

_START_TIMEOUT_S = 10.0


class SimServer:
    """A simulator served by uvicorn on a free 127.0.0.1 port in a daemon thread."""

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        config = config or SimConfig()
        self.config = replace(config, **overrides) if overrides else config
        self.sim = Simulator(self.config)
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def access_key(self) -> str:
        return self.config.access_key

    @property
    def secret_key(self) -> str:
        return self.config.secret_key

    @property
    def state(self) -> SimState:
        """The live in-memory state (mutated by the server thread: read, don't race it)."""
        return self.sim.state

    def start(self) -> SimServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            SimApp(self.sim),
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            lifespan="on",
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="clearml-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("clearml simulator did not start")
            time.sleep(0.005)
        self.url = f"http://127.0.0.1:{port}"
        self.sim.state.files_url = f"{self.url}/files"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SimServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


@contextmanager
def run_simulator(config: SimConfig | None = None, **overrides: Any) -> Iterator[SimServer]:
    """Start a simulator (``SimConfig`` fields as keyword overrides), yield it, stop it."""
    with SimServer(config, **overrides) as server:
        yield server


class FakeClock:
    """A settable clock (epoch seconds): pass it to ``Simulator(clock=...)``."""

    def __init__(self, now: float = 1_795_690_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def basic_auth(config: SimConfig) -> str:
    """The ``Authorization`` header value for HTTP Basic with the configured keys."""
    raw = f"{config.access_key}:{config.secret_key}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class InProcessApi:
    """ClearML calls against a :class:`Simulator` in-process; returns envelopes, not models."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.auth = basic_auth(sim.config)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=SimApp(sim)), base_url="http://clearml-sim"
        )

    async def call(
        self,
        endpoint: str,
        body: dict[str, Any] | None = None,
        *,
        auth: str | None = "",
        version: str = "2.23",
        method: str = "GET",
    ) -> tuple[int, dict[str, Any]]:
        """``(http_status, envelope)``; ``auth=""`` uses Basic credentials, None sends none."""
        header = self.auth if auth == "" else auth
        headers = {"Authorization": header} if header else {}
        path = f"/v{version}/{endpoint}" if version else f"/{endpoint}"
        resp = await self.client.request(method, path, json=body or {}, headers=headers)
        envelope: dict[str, Any] = resp.json()
        return resp.status_code, envelope

    async def ok(self, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """``data`` of a successful call; raises :class:`ApiError` otherwise."""
        status, env = await self.call(endpoint, body)
        meta = env["meta"]
        if status != 200:
            raise ApiError(meta["result_code"], meta["result_subcode"], meta["result_msg"])
        data: dict[str, Any] = env["data"]
        return data

    async def err(self, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """``meta`` of a call that must fail (checks HTTP status == ``result_code``)."""
        status, env = await self.call(endpoint, body)
        meta: dict[str, Any] = env["meta"]
        if status == 200 or status != meta["result_code"]:
            raise AssertionError(f"expected an error envelope, got HTTP {status}: {meta}")
        return meta

    async def aclose(self) -> None:
        await self.client.aclose()
