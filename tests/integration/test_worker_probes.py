"""A worker's probes over real HTTP: what the kubelet and Prometheus read on its metrics port."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

from mlbus.servers.process import free_port
from runtime import metrics


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test URL
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_healthz_readyz_and_metrics_answer_on_the_workers_port() -> None:
    port = free_port()
    metrics.start_metrics(port, "127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    # One process runs many services' loops in the test suite; start from none.
    metrics.READY.clear()
    metrics.ready("probes-it", False)
    assert await asyncio.to_thread(_status, f"{base}/healthz") == 200
    assert await asyncio.to_thread(_status, f"{base}/readyz") == 503
    metrics.ready("probes-it", True)
    try:
        assert await asyncio.to_thread(_status, f"{base}/readyz") == 200
        assert await asyncio.to_thread(_status, f"{base}/metrics") == 200
    finally:
        metrics.ready("probes-it", False)
