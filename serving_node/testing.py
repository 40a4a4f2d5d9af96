"""Run a serving node on a free 127.0.0.1 port in a background thread, for tests.

with run_node() as node:
    httpx.post(f"{node.serve_url}/parking_free_slots", json={...})
    node.set_faults(latency_ms=50)              # or endpoint="echo", hang=True, ...
    node.request_count("req-1")                 # times X-Request-ID req-1 arrived
    node.stop()                                 # abrupt: connections now refused
    node.start()                                # same port again, same counters
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from serving_node.app import NodeConfig, ServingNodeApp, create_app
from serving_node.faults import FaultPatch, FaultState
from serving_node.server import bind_socket, build_server
from serving_node.stats import NodeStats


class RunningNode:
    """A node served by uvicorn in a daemon thread; its state survives ``stop``/``start``."""

    def __init__(self, app: ServingNodeApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    @property
    def serve_url(self) -> str:
        """ClearML Serving base, ``<url>/serve``."""
        return f"{self.url}/serve"

    @property
    def faults(self) -> FaultState:
        """The fault knobs, turned directly (no HTTP round trip)."""
        return self.app.state.faults

    @property
    def stats(self) -> NodeStats:
        """Request counters and the request-id record."""
        return self.app.state.stats

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def set_faults(self, endpoint: str | None = None, **changes: Any) -> None:
        """Set fault knobs globally or for one endpoint, validated as ``POST /_node/faults`` is."""
        self.faults.apply(FaultPatch(endpoint=endpoint, **changes))

    def clear_faults(self, endpoint: str | None = None) -> None:
        """Drop fault overrides (all, or one endpoint's)."""
        self.faults.clear(endpoint)

    def request_count(self, request_id: str) -> int:
        """How many times a request with this ``X-Request-ID`` reached the node."""
        return self.stats.request_ids.count(request_id)

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind (the same port after a stop) and serve; return once uvicorn has started."""
        if self.running:
            raise RuntimeError("node already running")
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = build_server(self.app)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"serving-node-{self.port}"
        )
        thread.daemon = True
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"serving node did not start on {self.url}")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Die like a killed replica: stop listening, reset open connections, end the thread.

        Once this returns, connecting to ``url`` is refused; requests in flight see their
        connection dropped, with no response.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None or not thread.is_alive():
            return
        loop = _server_loop(server)
        if loop is not None and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(_kill_connections(server), loop)
            future.result(timeout_s)
        # Not force_exit: with every connection gone, uvicorn's own shutdown is quick (requests
        # that were hanging notice the disconnect) and ends the lifespan cleanly.
        server.should_exit = True
        thread.join(timeout_s)
        self._server = self._thread = None


def _server_loop(server: uvicorn.Server) -> asyncio.AbstractEventLoop | None:
    """The loop uvicorn runs on, found through its listening servers."""
    for listener in getattr(server, "servers", []):
        loop: asyncio.AbstractEventLoop = listener.get_loop()
        return loop
    return None


async def _kill_connections(server: uvicorn.Server) -> None:
    """Close the listeners and abort every connection (reset, not a graceful close)."""
    for listener in server.servers:
        listener.close()
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()


@contextmanager
def run_node(
    config: NodeConfig | None = None, app: ServingNodeApp | None = None, port: int = 0
) -> Iterator[RunningNode]:
    """Start a node (a fresh one unless ``app`` is given), yield it, stop it on exit."""
    node = RunningNode(app if app is not None else create_app(config), port=port)
    node.start()
    try:
        yield node
    finally:
        node.stop()
