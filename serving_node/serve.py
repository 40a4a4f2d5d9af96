"""``POST /serve/{endpoint}[/{version}]``: the hot path, free of logging and validation layers."""

from __future__ import annotations

import asyncio
import logging
import random

from serving_node.asgi import (
    Receive,
    Scope,
    Send,
    parse_json,
    read_body,
    request_headers,
    send_detail,
    send_json,
)
from serving_node.errors import EndpointNotFoundError, InjectedFaultError, NodeError
from serving_node.faults import Faults
from serving_node.state import NodeState

logger = logging.getLogger(__name__)

PREFIX = "/serve/"
UNMATCHED = "<not found>"  # stats key for requests to endpoints that are not served
_HANG_POLL_S = 0.05


async def handle_serve(state: NodeState, scope: Scope, receive: Receive, send: Send) -> None:
    """Route to the endpoint, apply the fault knobs, run the model, answer JSON."""
    if scope["method"] != "POST":
        await send_detail(send, 405, "Method Not Allowed")
        return
    key = scope["path"][len(PREFIX) :].strip("/")
    request_id, encoding = request_headers(scope)
    stats = state.stats
    try:
        endpoint = state.registry.resolve(key)
    except EndpointNotFoundError as exc:
        stats.arrived(UNMATCHED, request_id)
        stats.answered(UNMATCHED, exc.status)
        await send_detail(send, exc.status, exc.detail)
        return
    name = endpoint.name
    stats.arrived(name, request_id)
    body = await read_body(receive)
    try:
        faults = state.faults.for_request(name)
        if faults is not None and not await _suffer(state, name, faults, receive):
            stats.answered(name, 499)  # the client went away while the request hung
            return
        status, payload = 200, endpoint.predict(parse_json(body, encoding))
    except NodeError as exc:
        status, payload = exc.status, {"detail": exc.detail}
    except Exception as exc:
        logger.exception("endpoint %s failed", name)
        status, payload = 500, {"detail": f"Error processing request: {exc}"}
    stats.answered(name, status)
    await send_json(send, status, payload)


async def _suffer(state: NodeState, name: str, faults: Faults, receive: Receive) -> bool:
    """Apply hang, latency and injected errors; False if the client disconnected meanwhile."""
    if faults.hang and not await _hang(state, name, faults.hang_s, receive):
        return False
    delay_ms = faults.latency_ms + faults.jitter_ms * random.random()
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000.0)
    if faults.status_override is not None:
        code = faults.status_override
        raise InjectedFaultError(f"injected status {code}", status=code)
    if faults.error_rate > 0 and random.random() < faults.error_rate:
        raise InjectedFaultError("injected fault")
    return True


async def _hang(state: NodeState, name: str, hang_s: float, receive: Receive) -> bool:
    """Wait until the hang is switched off, ``hang_s`` passes, or the client disconnects.

    The knob is polled rather than awaited on an event so it can be flipped from any thread.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + hang_s
    disconnect = asyncio.ensure_future(receive())
    try:
        while (remaining := deadline - loop.time()) > 0:
            done, _ = await asyncio.wait({disconnect}, timeout=min(_HANG_POLL_S, remaining))
            if done:
                return False
            current = state.faults.for_request(name)
            if current is None or not current.hang:
                break
        return True
    finally:
        disconnect.cancel()
