"""The resource loop: every `poll_s`, read ClearML's workers, queues and queue metrics, join them
with the latest heartbeats (resources.py), and send out the states that changed or are due for
a refresh (changes.py): published to the compacted state topics, then stored as read models.

Queue states go out before machine states: the notifier's backlog rules and the `auto` queue
choice read them, and they are the few. A state counts as sent only once both its publish and
its write succeeded; otherwise it is sent again next tick. A ClearML outage (after a few quick
retries), a broker or a MongoDB hiccup costs a tick, never the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from runtime import metrics
from runtime.clearml import ClearMLRejected, ClearMLUnavailable
from runtime.retry import RetryPolicy
from schemas.base import utcnow
from schemas.resources import QueueState, ResourceState
from services.monitor.changes import ChangeGate, queue_fingerprint, resource_fingerprint
from services.monitor.errors import PublishFailed, StoreUnavailable
from services.monitor.resources import (
    Beat,
    FreeRule,
    QueueWait,
    Snapshot,
    Worker,
    machine_states,
    queue_states,
)

log = logging.getLogger(__name__)

State = ResourceState | QueueState
Clock = Callable[[], datetime]


class ResourceSource(Protocol):
    """ClearML, as the resource loop reads it."""

    async def workers(self, last_seen_s: float) -> list[dict[str, Any]]: ...
    async def queues(self) -> list[dict[str, Any]]: ...
    async def queue_metrics(
        self, queue_ids: list[str], now: float, window_s: int, interval_s: int
    ) -> list[dict[str, Any]]: ...


class StateSink(Protocol):
    """Where states go: the Kafka topics, or the read models."""

    def __call__(self, states: Sequence[State]) -> Awaitable[None]: ...


@dataclass(frozen=True)
class ResourceRules:
    """The knobs of the join and the loop (from MonitorSettings)."""

    poll_s: float = 5.0
    refresh_s: float = 60.0
    missed: int = 3
    worker_fresh_s: float = 90.0
    free: FreeRule = field(default_factory=FreeRule)
    metrics_window_s: int = 600
    metrics_interval_s: int = 60


class ResourcePoller:
    """Joins and sends resource and queue states until stopped."""

    def __init__(
        self,
        clearml: ResourceSource,
        beats: dict[str, Beat],
        publish: StateSink,
        store: StateSink,
        rules: ResourceRules,
        *,
        retry: RetryPolicy,
        clock: Clock = utcnow,
        previous: Sequence[ResourceState] = (),
    ) -> None:
        self._clearml, self._beats, self._publish, self._store = clearml, beats, publish, store
        self._rules, self._retry, self._clock = rules, retry, clock
        self._gate = ChangeGate(rules.refresh_s)
        self.machines: dict[str, ResourceState] = {s.machine_id: s for s in previous}
        self.queues: dict[str, QueueState] = {}
        self._waits: dict[str, QueueWait] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `poll_s` until `stop` is set; the tick in hand finishes first."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # a bug must not stop the monitor's other loops
                log.exception("resource tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._rules.poll_s)

    async def tick(self) -> None:
        """One read, join and send."""
        try:
            snap = await self._snapshot()
        except (ClearMLUnavailable, ClearMLRejected) as exc:
            metrics.POLL_FAILURES.labels("monitor", "resources").inc()
            log.warning("ClearML workers/queues not read (%s); trying again next tick", exc)
            return
        self.machines = machine_states(snap, self._rules.free, self._rules.missed)
        self.queues = queue_states(snap, self.machines)
        online = sum(m.online for m in self.machines.values())
        metrics.MACHINES.labels("online").set(online)
        metrics.MACHINES.labels("offline").set(len(self.machines) - online)
        await self._send(list(self.queues.values()), snap.now)
        await self._send(list(self.machines.values()), snap.now)

    async def _snapshot(self) -> Snapshot:
        rules = self._rules
        workers = await self._retry.run(
            lambda: self._clearml.workers(rules.worker_fresh_s), "workers.get_all"
        )
        queues = await self._retry.run(self._clearml.queues, "queues.get_all")
        now = self._clock()
        await self._read_waits([str(q["id"]) for q in queues if q.get("id")], now)
        return Snapshot(
            now=now,
            workers=[Worker.from_row(w) for w in workers if w.get("id")],
            queues=queues,
            waits=self._waits,
            beats=dict(self._beats),
            previous=self.machines,
        )

    async def _read_waits(self, queue_ids: list[str], now: datetime) -> None:
        """Average waits; when they cannot be read, the last ones stand (they move slowly)."""
        rules = self._rules
        try:
            rows = await self._retry.run(
                lambda: self._clearml.queue_metrics(
                    queue_ids, now.timestamp(), rules.metrics_window_s, rules.metrics_interval_s
                ),
                "queues.get_queue_metrics",
            )
        except (ClearMLUnavailable, ClearMLRejected) as exc:
            log.warning("queue metrics not read (%s); keeping the last averages", exc)
            return
        self._waits = {str(r.get("queue")): QueueWait.from_row(r) for r in rows}

    async def _send(self, states: list[State], now: datetime) -> None:
        due = [(s, key, fp) for s in states if self._gate.due(key := _key(s), fp := _fp(s), now)]
        if not due:
            return
        try:
            await self._publish([s for s, _, _ in due])
            await self._store([s for s, _, _ in due])
        except (PublishFailed, StoreUnavailable) as exc:
            log.warning("%d states not sent (%s); trying again next tick", len(due), exc)
            return
        for _, key, fp in due:
            self._gate.mark(key, fp, now)


def _key(state: State) -> str:
    return f"m/{state.machine_id}" if isinstance(state, ResourceState) else f"q/{state.queue_id}"


def _fp(state: State) -> tuple[Any, ...]:
    if isinstance(state, ResourceState):
        return resource_fingerprint(state)
    return queue_fingerprint(state)
