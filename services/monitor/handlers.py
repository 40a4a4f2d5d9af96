"""Handling the task-events topic: a TaskEnqueued event puts its request in the watch set.

The monitor reads its own events too (TaskStarted, ...); they carry nothing it needs. Events
older than the start-up scan of MongoDB are skipped: the scan already found every request they
could name that is still active, and a new consumer group would otherwise replay the topic's
whole history into the watch set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from schemas.base import Envelope
from schemas.tasks import TaskEvent, TaskEventKind
from services.monitor.lifecycle import Watched, WatchSet

log = logging.getLogger(__name__)
#: Allowance for clocks of different machines when comparing an event's time to the scan's.
CLOCK_MARGIN = timedelta(minutes=5)


class TaskEventHandler:
    """The monitor's one consumer handler."""

    def __init__(
        self, watch: WatchSet, seeded_at: datetime, owns: Callable[[str], bool] | None = None
    ) -> None:
        self._watch, self._replay_before = watch, seeded_at - CLOCK_MARGIN
        #: Whether this copy's partitions hold a request (see shares.py): an event handled
        #: after its partition was revoked (the batch in hand) is left to the next owner.
        self._owns = owns

    async def __call__(self, env: Envelope[TaskEvent]) -> None:
        event = env.payload
        if event.kind is not TaskEventKind.ENQUEUED or env.created_at < self._replay_before:
            return
        if not event.clone_id:
            log.warning("TaskEnqueued without a clone id; cannot follow it")
            return
        if self._owns is not None and not self._owns(event.request_id):
            log.info("request %s is another copy's to follow now", event.request_id)
            return
        added = self._watch.add(
            Watched(
                request_id=event.request_id,
                clone_id=event.clone_id,
                status="queued",
                user=event.user,
                task_id=event.task_id,
                queue=event.queue_name,
            )
        )
        if added:
            log.info("following request %s (clone %s)", event.request_id, event.clone_id)
