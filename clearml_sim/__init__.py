"""ClearML server simulator: the real REST contract, in memory, with simulated agents and faults.

The package stands in for a ClearML server and its GPU agents in tests, benchmarks and the local
stack. It speaks the envelope, status machine and quirks documented in
``shared/reference/clearml-api.md`` and is checked by running the real ``clearml`` SDK against it.
"""

from clearml_sim.app import SimApp, create_app
from clearml_sim.config import SimConfig
from clearml_sim.simulator import Simulator

__all__ = ["SimApp", "SimConfig", "Simulator", "create_app"]
