"""Injected failures for resilience tests: error rate, added latency, outage windows.

Faults answer **500/0 general_error**, never 503: the ClearML SDK retries 503 forever. During an
outage window every ClearML call (not the ``/_sim/`` control API) gets that 500 envelope; the
connection itself stays up. ``endpoints`` narrows a plan to exact names (``tasks.enqueue``) or whole
services (``tasks.*``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from clearml_sim import errors


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The active fault settings; replaced whole on every change so reads need no lock."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    outage_until: float = 0.0
    endpoints: frozenset[str] = frozenset()

    def applies(self, endpoint: str) -> bool:
        if not self.endpoints:
            return True
        return endpoint in self.endpoints or f"{endpoint.split('.', 1)[0]}.*" in self.endpoints


class Faults:
    """Decides, per call, how long to delay and whether to fail."""

    def __init__(self, clock: Callable[[], float] = time.time, seed: int | None = None) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._plan: FaultPlan | None = None

    def configure(
        self,
        *,
        error_rate: float = 0.0,
        latency_ms: float = 0.0,
        outage_s: float = 0.0,
        endpoints: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Replace the plan; returns the new snapshot."""
        if not 0.0 <= error_rate <= 1.0 or latency_ms < 0 or outage_s < 0:
            raise ValueError("error_rate must be in [0, 1]; latency_ms and outage_s >= 0")
        self._plan = FaultPlan(
            error_rate=float(error_rate),
            latency_ms=float(latency_ms),
            outage_until=self._clock() + outage_s if outage_s else 0.0,
            endpoints=frozenset(endpoints or ()),
        )
        return self.snapshot()

    def clear(self) -> None:
        self._plan = None

    def snapshot(self) -> dict[str, Any]:
        plan = self._plan or FaultPlan()
        return {
            "error_rate": plan.error_rate,
            "latency_ms": plan.latency_ms,
            "outage_s": round(max(0.0, plan.outage_until - self._clock()), 3),
            "endpoints": sorted(plan.endpoints),
        }

    def decide(self, endpoint: str) -> tuple[float, errors.ApiError | None]:
        """``(delay_s, error)`` for one call; ``(0.0, None)`` on the fast path."""
        plan = self._plan
        if plan is None or not plan.applies(endpoint):
            return 0.0, None
        delay = plan.latency_ms / 1000.0
        if plan.outage_until and self._clock() < plan.outage_until:
            return delay, errors.general_error("simulated outage")
        if plan.error_rate and self._rng.random() < plan.error_rate:
            return delay, errors.general_error("simulated fault")
        return delay, None
