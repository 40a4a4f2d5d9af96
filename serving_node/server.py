"""uvicorn wiring shared by the command line and the test helper."""

from __future__ import annotations

import socket

import uvicorn

from serving_node.app import ServingNodeApp


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (read it back from ``getsockname``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(app: ServingNodeApp, log_level: str = "warning") -> uvicorn.Server:
    """uvicorn on httptools and uvloop, without access logs (the benchmark measures the node)."""
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=log_level,
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)
