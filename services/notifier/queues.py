"""Rules on queue state: a queue backing up (too long, or its oldest entry waiting too long), and
a queue with tasks waiting and no worker listening. Pure; returns the changed state keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.resources import QueueState
from services.notifier import keys
from services.notifier.alerts import AlertBook, Condition
from services.notifier.kinds import QUEUE_BACKLOG, QUEUE_NO_WORKER


@dataclass(frozen=True)
class QueueLimits:
    """Thresholds of the queue rules."""

    max_length: int = 20
    max_wait_s: float = 600.0
    #: States older than this are history (a new consumer group replays the compacted topic,
    #: deleted queues included): they change no alert. The monitor republishes every minute.
    max_age_s: float = 180.0


class QueueRules:
    """Feeds the alert book from each queue's latest state (subject: the queue's name)."""

    def __init__(self, limits: QueueLimits, book: AlertBook) -> None:
        self._limits, self._book = limits, book

    def state(self, queue: QueueState, now: datetime) -> list[str]:
        """A queue's new state; returns the changed state keys."""
        if (now - queue.at).total_seconds() > self._limits.max_age_s:
            return []
        changed = [self._backlog(queue, now), self._no_worker(queue, now)]
        return [keys.alert(fp) for fp in changed if fp]

    def _backlog(self, queue: QueueState, now: datetime) -> str | None:
        wait = queue.oldest_wait_s or 0.0
        limits = self._limits
        if queue.length <= limits.max_length and wait <= limits.max_wait_s:
            return self._book.deactivate(QUEUE_BACKLOG.name, queue.name, now)
        message = (
            f"Queue {queue.name} is backing up: {queue.length} tasks waiting, the oldest for "
            f"{wait:.0f} s (limits {limits.max_length} tasks, {limits.max_wait_s:g} s)."
        )
        return self._book.activate(Condition(QUEUE_BACKLOG, queue.name, message), now)

    def _no_worker(self, queue: QueueState, now: datetime) -> str | None:
        if queue.length == 0 or queue.workers:
            return self._book.deactivate(QUEUE_NO_WORKER.name, queue.name, now)
        message = f"Queue {queue.name} has {queue.length} tasks waiting and no worker listening."
        return self._book.activate(Condition(QUEUE_NO_WORKER, queue.name, message), now)
