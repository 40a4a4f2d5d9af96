"""The control API under ``/_node/``: fault knobs, counters and request-id lookups for tests.

GET    /_node/faults                   overrides as set, and effective faults per endpoint
POST   /_node/faults                   FaultPatch JSON; "endpoint" omitted means global
DELETE /_node/faults[?endpoint=NAME]   drop all overrides (back to CLI flags) or one endpoint's
GET    /_node/stats                    request and status counts per endpoint
DELETE /_node/stats                    zero the counters and forget request ids
GET    /_node/requests/{request_id}    {"request_id": ..., "count": n}
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from pydantic import ValidationError

from serving_node.asgi import Receive, Scope, Send, read_body, send_detail, send_json
from serving_node.faults import FaultPatch
from serving_node.state import NodeState

PREFIX = "/_node/"
_REQUESTS = "requests/"


async def handle_control(state: NodeState, scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatch one control-API request."""
    route = scope["path"][len(PREFIX) :].rstrip("/")
    method = scope["method"]
    if route == "faults":
        await _faults(state, method, scope, receive, send)
    elif route == "stats":
        await _stats(state, method, send)
    elif route.startswith(_REQUESTS) and len(route) > len(_REQUESTS):
        if method != "GET":
            await send_detail(send, 405, "Method Not Allowed")
            return
        request_id = route[len(_REQUESTS) :]
        count = state.stats.request_ids.count(request_id)
        await send_json(send, 200, {"request_id": request_id, "count": count})
    else:
        await send_detail(send, 404, "Not Found")


async def _faults(
    state: NodeState, method: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if method == "POST":
        try:
            patch = FaultPatch.model_validate(orjson.loads(await read_body(receive)))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            await send_detail(send, 422, str(exc))
            return
        if patch.endpoint is not None and patch.endpoint not in state.registry.names():
            await send_detail(send, 404, f"unknown endpoint: {patch.endpoint}")
            return
        state.faults.apply(patch)
    elif method == "DELETE":
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        state.faults.clear(query.get("endpoint", [None])[0])
    elif method != "GET":
        await send_detail(send, 405, "Method Not Allowed")
        return
    await send_json(send, 200, state.faults.describe())


async def _stats(state: NodeState, method: str, send: Send) -> None:
    if method == "DELETE":
        state.stats.reset()
    elif method != "GET":
        await send_detail(send, 405, "Method Not Allowed")
        return
    payload = {"instance_id": state.instance_id, **state.stats.describe()}
    await send_json(send, 200, payload)
