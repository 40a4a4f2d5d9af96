"""Rules on GPU heartbeats: a machine offline after missed heartbeats (a timer) and back online
(a heartbeat), a GPU saturated for a while and free again, its memory nearly full, running hot.

Pure state, no I/O; each method returns the state keys it changed, for the caller to persist.
Offline time runs on the notifier's clock (heartbeats stop arriving: nothing else can tell);
the saturation window runs on the agent's clock (its heartbeats' own times), so that a backlog
read after a restart measures it right, and so does the test for old news: a heartbeat sent no
later than the last one heard (delivered again after a restart) changes nothing. A heartbeat
older than `max_age_s` (a backlog from long ago, or a new consumer group reading the topic's
history) tells nothing about now and is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.heartbeat import AgentHeartbeat, GpuReading
from schemas.notifier_state import ConditionWindow, MachineSeen
from services.notifier import keys
from services.notifier.alerts import AlertBook, Condition, fingerprint
from services.notifier.kinds import GPU_HOT, GPU_MEMORY_FULL, GPU_SATURATED, MACHINE_OFFLINE, Kind


@dataclass(frozen=True)
class MachineLimits:
    """Thresholds of the machine rules."""

    missed: int = 3
    max_age_s: float = 300.0
    busy_pct: float = 90.0
    busy_for_s: float = 60.0
    memory_pct: float = 95.0
    temperature_c: float = 85.0


class MachineRules:
    """Last-seen per machine and saturation windows per GPU, feeding the alert book."""

    def __init__(self, limits: MachineLimits, book: AlertBook, started_at: datetime) -> None:
        self._limits, self._book = limits, book
        #: Silence is counted from start-up at the earliest: heartbeats did arrive while the
        #: notifier was down, it just did not hear them.
        self._started = started_at
        self.machines: dict[str, MachineSeen] = {}
        self.windows: dict[str, ConditionWindow] = {}

    def heartbeat(self, hb: AgentHeartbeat, sent_at: datetime, now: datetime) -> list[str]:
        """A machine reported; returns the changed state keys."""
        # An agent clock running ahead must not make its later, true heartbeats look old.
        sent_at = min(sent_at, now)
        if (now - sent_at).total_seconds() > self._limits.max_age_s:
            return []
        known = self.machines.get(hb.machine_id)
        if known is not None and known.last_sent is not None and sent_at <= known.last_sent:
            return []  # delivered again after a restart: it was heard before the silence began
        changed: list[str] = []
        if known is None or known.interval_s != hb.interval_s:
            changed.append(keys.machine(hb.machine_id))
        self.machines[hb.machine_id] = MachineSeen(
            machine_id=hb.machine_id,
            interval_s=hb.interval_s,
            last_seen=heard_at(sent_at, now, hb.interval_s),
            last_sent=sent_at,
        )
        changed += _alert(self._book.deactivate(MACHINE_OFFLINE.name, hb.machine_id, now))
        for gpu in hb.gpus:
            changed += self._gpu(f"{hb.machine_id}/gpu{gpu.index}", gpu, sent_at, now)
        return changed

    def tick(self, now: datetime) -> list[str]:
        """Machines silent for `missed` intervals go offline; returns the changed state keys."""
        changed: list[str] = []
        for seen in self.machines.values():
            silent = (now - max(seen.last_seen, self._started)).total_seconds()
            limit = self._limits.missed * seen.interval_s
            if silent <= limit or self._book.is_active(MACHINE_OFFLINE.name, seen.machine_id):
                continue
            message = (
                f"{seen.machine_id} stopped answering: no heartbeat for {silent:.0f} s "
                f"({self._limits.missed} missed at {seen.interval_s:g} s)."
            )
            condition = Condition(MACHINE_OFFLINE, seen.machine_id, message)
            # its record is written now too, with the last heartbeat's own time: one delivered
            # again after a restart must not count as the machine being back
            changed += [keys.machine(seen.machine_id), *_alert(self._book.activate(condition, now))]
        return changed

    def _gpu(self, subject: str, gpu: GpuReading, sent_at: datetime, now: datetime) -> list[str]:
        limits = self._limits
        memory = None
        if gpu.memory_used_mb is not None and gpu.memory_total_mb:
            memory = 100.0 * gpu.memory_used_mb / gpu.memory_total_mb
        return [
            *self._busy(subject, gpu.utilization_pct, sent_at, now),
            *self._level(
                GPU_MEMORY_FULL,
                subject,
                value=memory,
                limit=limits.memory_pct,
                unit="% memory used",
                now=now,
            ),
            *self._level(
                GPU_HOT,
                subject,
                value=gpu.temperature_c,
                limit=limits.temperature_c,
                unit=" °C",
                now=now,
            ),
        ]

    def _level(
        self,
        kind: Kind,
        subject: str,
        *,
        value: float | None,
        limit: float,
        unit: str,
        now: datetime,
    ) -> list[str]:
        if value is None:
            return []
        if value > limit:
            message = f"{subject}: {value:.0f}{unit} (above {limit:g})."
            return _alert(self._book.activate(Condition(kind, subject, message), now))
        return _alert(self._book.deactivate(kind.name, subject, now))

    def _busy(
        self, subject: str, utilization: float | None, sent_at: datetime, now: datetime
    ) -> list[str]:
        if utilization is None:
            return []
        fp = fingerprint(GPU_SATURATED.name, subject)
        window = self.windows.get(fp)
        if utilization <= self._limits.busy_pct:
            if window is None:
                return []
            del self.windows[fp]
            return [
                keys.window(fp),
                *_alert(self._book.deactivate(GPU_SATURATED.name, subject, now)),
            ]
        changed: list[str] = []
        if window is None:
            window = ConditionWindow(kind=GPU_SATURATED.name, subject=subject, since=sent_at)
            self.windows[fp] = window
            changed.append(keys.window(fp))
        lasted = (sent_at - window.since).total_seconds()
        if lasted >= self._limits.busy_for_s:
            message = (
                f"{subject}: utilisation {utilization:.0f}% for {lasted:.0f} s "
                f"(above {self._limits.busy_pct:g}%)."
            )
            condition = Condition(GPU_SATURATED, subject, message)
            changed += _alert(self._book.activate(condition, now))
        return changed


def _alert(fp: str | None) -> list[str]:
    return [keys.alert(fp)] if fp else []


def heard_at(sent_at: datetime, now: datetime, interval_s: float) -> datetime:
    """When the machine was last heard of: the heartbeat's own time when the agent's clock agrees
    with ours to within one interval (so time the message spent queued in Kafka or waiting in
    this consumer's backlog does not delay an offline alert), else the time it arrived."""
    if abs((now - sent_at).total_seconds()) <= interval_s:
        return min(sent_at, now)
    return now
