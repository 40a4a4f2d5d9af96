"""A small, real model server speaking ClearML Serving's URL scheme, for tests, benchmarks and the
local stack: ``POST /serve/{endpoint}[/{version}]``, ClearML Serving's probes, and a ``/_node/``
control API for latency and fault injection.

Modules: ``parking_model`` (synthetic data and ridge fit), ``endpoints`` (served models),
``faults`` and ``stats`` (knobs and counters), ``serve``/``probes``/``control`` (handlers),
``app`` (ASGI router), ``testing`` (run one in a thread), ``__main__`` (command line).
"""

from serving_node.app import NodeConfig, ServingNodeApp, create_app
from serving_node.faults import Faults

__all__ = ["Faults", "NodeConfig", "ServingNodeApp", "create_app"]
