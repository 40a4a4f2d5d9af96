"""Which states go out this tick: the ones that changed, and unchanged ones due for a refresh.

"Changed" is judged on a fingerprint, not the whole state: GPU load moves a little with every
heartbeat, and republishing every machine every tick would flood the compacted topic with news
of nothing. A machine's fingerprint keeps what an operator acts on (online and since, workers,
queues, tasks, free GPUs) and each GPU's load and memory in steps of `GPU_STEP_PCT`; fine
readings still go out with every changed state and every refresh (the notifier reads raw
heartbeats for its GPU rules). A queue's fingerprint is all of it but the time it was computed,
so a queue with waiting entries goes out every tick (its oldest wait grows): the notifier's
backlog rules need that promptly, and queues are few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.resources import QueueState, ResourceState

#: GPU load and memory changes smaller than this (percentage points) are not news.
GPU_STEP_PCT = 10.0


def _step(value: float | None) -> int | None:
    return None if value is None else int(value // GPU_STEP_PCT)


def resource_fingerprint(state: ResourceState) -> tuple[Any, ...]:
    """What must differ for a machine's state to count as changed."""
    gpus = tuple(
        (
            g.index,
            g.error is None,
            _step(g.utilization_pct),
            _step(100 * g.memory_used_mb / g.memory_total_mb)
            if g.memory_used_mb is not None and g.memory_total_mb
            else None,
        )
        for g in state.gpus
    )
    return (
        state.online,
        state.since,
        tuple(state.workers),
        tuple(state.queues),
        tuple(state.current_tasks),
        tuple(state.ips),
        state.free_gpus,
        gpus,
    )


def queue_fingerprint(state: QueueState) -> tuple[Any, ...]:
    """Everything but `at` (waits rounded to the second)."""
    return (
        state.name,
        state.length,
        None if state.oldest_wait_s is None else round(state.oldest_wait_s),
        None if state.avg_wait_s is None else round(state.avg_wait_s),
        None if state.avg_length is None else round(state.avg_length, 1),
        tuple(state.workers),
        tuple(state.idle_workers),
        state.free_gpus,
    )


@dataclass
class ChangeGate:
    """Remembers what went out for each key, and when."""

    refresh_s: float
    _sent: dict[str, tuple[tuple[Any, ...], datetime]] = field(default_factory=dict)

    def due(self, key: str, fingerprint: tuple[Any, ...], now: datetime) -> bool:
        """True when the state changed since it last went out, or is due for a refresh."""
        sent = self._sent.get(key)
        if sent is None or sent[0] != fingerprint:
            return True
        return now - sent[1] >= timedelta(seconds=self.refresh_s)

    def mark(self, key: str, fingerprint: tuple[Any, ...], now: datetime) -> None:
        """Record that the state went out (published and stored)."""
        self._sent[key] = (fingerprint, now)
