"""One simulator instance: state, auth, faults and agents, shared by the app and the test helper."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from clearml_sim import demo
from clearml_sim.agents import AgentPool
from clearml_sim.auth import TokenAuth
from clearml_sim.config import SimConfig
from clearml_sim.faults import Faults
from clearml_sim.journal import Journal
from clearml_sim.state import SimState

log = logging.getLogger(__name__)


class Simulator:
    """Owns everything a running simulator holds; ``reset`` brings it back to a fresh seed."""

    def __init__(
        self, config: SimConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or SimConfig()
        self.clock = clock
        self.state = SimState(self.config, clock)
        self.auth = TokenAuth(self.config)
        self.faults = Faults(clock)
        self.agents = AgentPool(self.state)
        self.journal = Journal()
        self.started_at = clock()
        self._loop_task: asyncio.Task[None] | None = None
        if self.config.demo:
            self.seed_demo()

    def seed_demo(self) -> None:
        demo.seed(self)

    def reset(self, demo: bool | None = None) -> None:
        """Clear state, agents and faults; reseed the demo if asked (default: as configured)."""
        self.agents.clear()
        self.faults.clear()
        self.journal.clear()
        self.state.clear()
        if self.config.demo if demo is None else demo:
            self.seed_demo()

    def start_background(self) -> None:
        """Start the agent loop on the running event loop (the app's lifespan calls this)."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(
                self.agents.run(self.config.agent_tick_s)
            )

    async def stop_background(self) -> None:
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                log.debug("agent loop stopped")
