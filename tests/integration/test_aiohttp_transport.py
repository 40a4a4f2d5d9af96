"""The router's production HTTP transport (aiohttp) against real sockets: each way a call can end
maps to its place in the error tree, which decides retry on another replica, 504 or 502."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest

from services.inference_router.errors import ModelFailed, ModelTimedOut, ReplicaRefused
from services.inference_router.settings import InferenceRouterSettings
from services.inference_router.transport import AiohttpTransport, open_transport
from serving_node.testing import RunningNode
from tests.integration.test_serving_node_http import CAR_PARK


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    async with open_transport(InferenceRouterSettings()) as t:
        yield t


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_answer_comes_back_with_its_status_and_bytes(
    transport: AiohttpTransport, node: RunningNode
) -> None:
    url = f"{node.serve_url}/parking_free_slots"
    status, body = await transport.post(
        url, orjson.dumps(CAR_PARK), {"X-Request-ID": "req-aiohttp-1"}, 5.0, 1.0
    )
    assert status == 200
    assert 0 <= orjson.loads(body)["free_slots"] <= 120
    assert node.request_count("req-aiohttp-1") == 1  # the request id travelled in its header
    node.set_faults(endpoint="parking_free_slots", status_override=422)
    status, body = await transport.post(url, b"{}", {}, 5.0, 1.0)
    assert status == 422  # a model's error is an answer, not a transport failure
    assert "detail" in orjson.loads(body)
    assert await transport.get_status(f"{node.url}/health", 1.0) == 200


async def test_a_refused_connection_is_replica_refused(transport: AiohttpTransport) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/serve/x"
    with pytest.raises(ReplicaRefused):
        await transport.post(url, b"{}", {}, 2.0, 1.0)
    assert await transport.get_status(url, 0.5) is None


async def test_no_answer_within_the_budget_is_model_timed_out(
    transport: AiohttpTransport, node: RunningNode
) -> None:
    node.set_faults(endpoint="parking_free_slots", hang=True)  # until cleared (an hour at most)
    # The 0.3 s budget, not the node's hang, ends the wait: it ends while the node still hangs
    # (the deadline is for a transport that ignored its budget, and far inside the hang).
    async with asyncio.timeout(60):
        with pytest.raises(ModelTimedOut):
            await transport.post(
                f"{node.serve_url}/parking_free_slots", orjson.dumps(CAR_PARK), {}, 0.3, 1.0
            )
    node.clear_faults()


async def test_a_connection_dropped_after_the_request_is_model_failed(
    transport: AiohttpTransport,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the request arrived: it may have run, so no retry elsewhere
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ModelFailed):
            await transport.post(f"http://127.0.0.1:{port}/serve/x", b"{}", {}, 2.0, 1.0)
    finally:
        server.close()
        await server.wait_closed()
