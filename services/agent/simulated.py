"""Made-up GPUs with plausible, smoothly varying load, for the local stack, tests and demos.

Each GPU is idle most of the time and now and then runs a job: utilisation walks towards the
job's level, memory follows the job's footprint and its utilisation, temperature lags behind the
load (35-85 °C), power is proportional to it. A busy GPU shows one or two processes. Every
machine has one GPU model; UUIDs are stable for a machine id and index, and readings are
deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from schemas.heartbeat import GpuProcess, GpuReading
from services.agent.probe import GpuRead

_UUID_NAMESPACE = uuid.UUID("1c2f4e1a-6d0b-4f5e-9a57-6d6c6275733a")


@dataclass(frozen=True)
class GpuModel:
    """What NVML would say about a product: its name, memory, and idle and peak power."""

    name: str
    memory_mb: float
    idle_w: float
    max_w: float


MODELS: tuple[GpuModel, ...] = (
    GpuModel("NVIDIA A100-SXM4-40GB", 40960.0, 55.0, 400.0),
    GpuModel("NVIDIA A100-SXM4-80GB", 81920.0, 60.0, 400.0),
    GpuModel("NVIDIA H100 80GB HBM3", 81559.0, 70.0, 700.0),
    GpuModel("NVIDIA L40S", 46068.0, 35.0, 350.0),
)

START_CHANCE = 0.04  # per read: an idle GPU starts a job about every 25 reads (~2 min at 5 s)


@dataclass
class _Gpu:
    index: int
    uuid: str
    util: float = 0.0
    temp: float = 35.0
    target: float = 0.0
    job_fraction: float = 0.0
    reads_left: int = 0
    pids: list[int] = field(default_factory=list)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


class SimulatedProbe:
    """`n` fake GPUs on machine `machine_id`; `seed` None draws a fresh seed."""

    simulated = True

    def __init__(self, n: int, seed: int | None = None, machine_id: str = "sim") -> None:
        self._rng = random.Random(None if seed is None else f"{seed}:{machine_id}")
        self.model = self._rng.choice(MODELS)
        self._gpus = [
            _Gpu(i, f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{machine_id}:{i}')}") for i in range(n)
        ]
        for g in self._gpus:
            self._warm_start(g)

    def read(self) -> GpuRead:
        """Advance every GPU by one step and read it."""
        return GpuRead(gpus=[self._reading(self._step(g)) for g in self._gpus])

    def close(self) -> None:
        """Nothing to release."""

    def _warm_start(self, g: _Gpu) -> None:
        """Half the GPUs are mid-job at start-up, so a fresh demo is not all idle."""
        if self._rng.random() < 0.5:
            self._start_job(g)
            g.util = g.target * self._rng.uniform(0.8, 1.0)
            g.temp = 35.0 + 0.5 * g.util

    def _start_job(self, g: _Gpu) -> None:
        rng = self._rng
        g.reads_left = rng.randint(10, 120)
        g.target = rng.uniform(55.0, 100.0)
        g.job_fraction = rng.uniform(0.2, 0.9)
        g.pids = [rng.randint(2000, 99999) for _ in range(rng.choice((1, 1, 2)))]

    def _step(self, g: _Gpu) -> _Gpu:
        rng = self._rng
        if g.reads_left > 0:
            g.reads_left -= 1
            if g.reads_left == 0:
                g.target, g.job_fraction, g.pids = 0.0, 0.0, []
        elif rng.random() < START_CHANCE:
            self._start_job(g)
        noise = rng.gauss(0.0, 6.0 if g.reads_left else 1.0)
        g.util = _clamp(g.util + 0.4 * (g.target - g.util) + noise, 0.0, 100.0)
        # The core heats and cools slowly: first-order lag towards a load-dependent level.
        g.temp = _clamp(g.temp + 0.2 * (35.0 + 0.5 * g.util - g.temp), 35.0, 85.0)
        return g

    def _reading(self, g: _Gpu) -> GpuReading:
        m, load = self.model, g.util / 100.0
        job_mb = g.job_fraction * m.memory_mb * (0.85 + 0.15 * load)
        used = min(m.memory_mb, 4.0 + job_mb)
        power = m.idle_w + (m.max_w - m.idle_w) * load + self._rng.uniform(-3.0, 3.0)
        share = job_mb / len(g.pids) if g.pids else 0.0
        return GpuReading(
            index=g.index,
            uuid=g.uuid,
            name=m.name,
            utilization_pct=round(g.util, 1),
            memory_used_mb=round(used, 1),
            memory_total_mb=m.memory_mb,
            temperature_c=round(g.temp, 1),
            power_w=round(_clamp(power, m.idle_w * 0.8, m.max_w), 1),
            processes=[GpuProcess(pid=p, used_memory_mb=round(share, 1)) for p in g.pids],
        )
