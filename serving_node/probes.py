"""ClearML Serving 1.3.5's probes: ``/health``, ``/readiness``, ``/liveness``, JSON ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from serving_node.asgi import Receive, Scope, Send, send_detail, send_json
from serving_node.state import CLEARML_SERVING_VERSION, NodeState

Probe = Callable[[NodeState, Send], Awaitable[None]]


async def health(state: NodeState, send: Send) -> None:
    """The process answers."""
    await send_json(
        send,
        200,
        {
            "status": "healthy",
            "service": "clearml-serving",
            "version": CLEARML_SERVING_VERSION,
            "timestamp": time.time(),
            "instance_id": state.instance_id,
        },
    )


async def readiness(state: NodeState, send: Send) -> None:
    """200 with the number of loaded models, or 503 with ``detail.reason`` when not ready."""
    not_loaded = state.faults.not_ready_endpoints()
    if state.faults.effective().not_ready or not_loaded:
        detail = {"reason": "not ready", "endpoints_not_loaded": not_loaded}
        await send_detail(send, 503, detail)
        return
    payload = {
        "status": "ready",
        "models_loaded": len(state.registry.endpoints),
        "gpu_available": False,
        "instance_id": state.instance_id,
        "timestamp": time.time(),
    }
    await send_json(send, 200, payload)


async def liveness(state: NodeState, send: Send) -> None:
    """The event loop turns."""
    await send_json(send, 200, {"status": "alive", "timestamp": time.time()})


async def metrics(state: NodeState, send: Send) -> None:
    """Counters in ClearML Serving's JSON (not Prometheus) shape."""
    not_loaded = set(state.faults.not_ready_endpoints())
    models = [
        {"endpoint": e.name, "version": e.version, "loaded": e.name not in not_loaded}
        for e in state.registry.endpoints
    ]
    stats = state.stats
    payload = {
        "uptime_seconds": round(time.time() - stats.started_at, 3),
        "total_requests": stats.total_requests,
        "last_prediction_timestamp": stats.last_prediction_timestamp,
        "models": models,
        "gpu_memory_used_mb": 0,
        "gpu_memory_total_mb": 0,
    }
    await send_json(send, 200, payload)


PROBES: dict[str, Probe] = {
    "/health": health,
    "/readiness": readiness,
    "/liveness": liveness,
    "/metrics": metrics,
}


async def handle_probe(
    state: NodeState, probe: Probe, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run a probe for GET; 405 otherwise."""
    if scope["method"] != "GET":
        await send_detail(send, 405, "Method Not Allowed")
        return
    await probe(state, send)
