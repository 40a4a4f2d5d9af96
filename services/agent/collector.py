"""One read of every probe this process owns, turned into heartbeats."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from schemas.heartbeat import AgentHeartbeat
from services.agent.host import HostProbe, HostRead
from services.agent.nvml import NvmlProbe
from services.agent.probe import GpuProbe
from services.agent.settings import AgentSettings
from services.agent.simulated import SimulatedProbe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Machine:
    """A machine id and the probe that reads its GPUs."""

    machine_id: str
    probe: GpuProbe


def heartbeat(machine: Machine, host: HostRead, interval_s: float) -> AgentHeartbeat:
    """Read one machine's GPUs now and join them with the host reading."""
    gpus = machine.probe.read()
    return AgentHeartbeat(
        machine_id=machine.machine_id,
        interval_s=interval_s,
        gpus=gpus.gpus,
        cpu_pct=host.cpu_pct,
        memory_used_mb=host.memory_used_mb,
        memory_total_mb=host.memory_total_mb,
        nvml_error=gpus.error,
        simulated=machine.probe.simulated,
    )


class Collector:
    """Every machine of this process: one real one, or `machines` simulated ones that share the
    host's CPU and memory reading. `collect` blocks on NVML: run it in a worker thread."""

    def __init__(self, machines: list[Machine], interval_s: float) -> None:
        self.machines = machines
        self._interval_s = interval_s
        self._host = HostProbe()

    def collect(self) -> list[AgentHeartbeat]:
        """One heartbeat per machine, read now."""
        host = self._host.read()
        return [heartbeat(m, host, self._interval_s) for m in self.machines]

    def close(self) -> None:
        """Release every probe (nvmlShutdown for the real one)."""
        for m in self.machines:
            m.probe.close()


def machine_ids(settings: AgentSettings) -> list[str]:
    """`machine_names` when given; else `machine_id` itself, or `<machine_id>-1` ..
    `<machine_id>-M` for M simulated machines."""
    if settings.machine_names:
        return list(settings.machine_names)
    if settings.machines == 1:
        return [settings.machine_id]
    return [f"{settings.machine_id}-{k}" for k in range(1, settings.machines + 1)]


def open_collector(settings: AgentSettings) -> Collector:
    """Real NVML, or simulated GPUs when `simulate` > 0."""
    machines: list[Machine] = []
    for mid in machine_ids(settings):
        probe: GpuProbe
        if settings.simulate:
            probe = SimulatedProbe(settings.simulate, settings.seed, mid)
        else:
            probe = NvmlProbe(reinit_every=settings.nvml_retry_reads)
        machines.append(Machine(mid, probe))
    log.info(
        "agent for %s: %s",
        ", ".join(m.machine_id for m in machines[:3]) + (" ..." if len(machines) > 3 else ""),
        f"{settings.simulate} simulated GPUs each" if settings.simulate else "NVML",
    )
    return Collector(machines, settings.interval_s)
