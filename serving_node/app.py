"""The node's ASGI application: a three-way prefix router over bare ASGI, no framework."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from serving_node.asgi import Receive, Scope, Send, send_detail
from serving_node.control import PREFIX as CONTROL_PREFIX
from serving_node.control import handle_control
from serving_node.endpoints import EndpointRegistry, default_registry
from serving_node.faults import Faults, FaultState
from serving_node.probes import PROBES, handle_probe
from serving_node.serve import PREFIX as SERVE_PREFIX
from serving_node.serve import handle_serve
from serving_node.state import NodeState
from serving_node.stats import NodeStats


def _new_instance_id() -> str:
    return f"serving-node-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class NodeConfig:
    """How a node starts: its name, its initial fault knobs, the size of the request-id record."""

    instance_id: str = field(default_factory=_new_instance_id)
    faults: Faults = field(default_factory=Faults)
    request_id_capacity: int = 10_000


class ServingNodeApp:
    """ASGI app speaking ClearML Serving's URL scheme, plus the ``/_node/`` control API."""

    def __init__(self, state: NodeState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(SERVE_PREFIX):
                await handle_serve(self.state, scope, receive, send)
            elif path.startswith(CONTROL_PREFIX):
                await handle_control(self.state, scope, receive, send)
            elif (probe := PROBES.get(path)) is not None:
                await handle_probe(self.state, probe, scope, receive, send)
            else:
                await send_detail(send, 404, "Not Found")
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        # Models are fitted in create_app, so there is nothing to start or stop here.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    config: NodeConfig | None = None, registry: EndpointRegistry | None = None
) -> ServingNodeApp:
    """Build a node; the parking model is fitted here (about 0.1 s)."""
    config = config or NodeConfig()
    registry = registry or default_registry()
    state = NodeState(
        registry=registry,
        faults=FaultState(registry.names(), config.faults),
        stats=NodeStats(config.request_id_capacity),
        instance_id=config.instance_id,
    )
    return ServingNodeApp(state)
