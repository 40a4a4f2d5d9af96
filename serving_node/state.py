"""Everything one node holds: its endpoints, fault knobs, counters and identity."""

from __future__ import annotations

from dataclasses import dataclass

from serving_node.endpoints import EndpointRegistry
from serving_node.faults import FaultState
from serving_node.stats import NodeStats

# The ClearML Serving release whose HTTP surface (health probes, JSON /metrics) the node mimics.
CLEARML_SERVING_VERSION = "1.3.5"


@dataclass
class NodeState:
    """The shared state of one serving node, read by every handler."""

    registry: EndpointRegistry
    faults: FaultState
    stats: NodeStats
    instance_id: str
