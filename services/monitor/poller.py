"""The poll loop: every `poll_s`, ask ClearML for the status of every followed clone, record what
changed on the request's log, then publish it as a task event.

Order of effects per change, and why: the log document first (what the flow author reads), then
the in-memory status, then the event. An event whose publish failed stays pending on the request
and is sent again on the next tick, so a Kafka hiccup delays it but never loses it; a request
leaves the watch set only when it has ended *and* its events are out. A ClearML or MongoDB
outage costs a tick, never the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from runtime.clearml import ClearMLRejected, ClearMLUnavailable
from runtime.logs import request_id_var
from schemas.base import utcnow
from schemas.tasks import TaskEvent
from services.monitor.clearml import chunks
from services.monitor.errors import PublishFailed, StoreUnavailable
from services.monitor.lifecycle import TERMINAL, Change, Watched, WatchSet, event_for, observe

log = logging.getLogger(__name__)

Publish = Callable[[TaskEvent], Awaitable[None]]


class StatusSource(Protocol):
    """Where task statuses come from (ClearML)."""

    async def statuses(self, task_ids: list[str]) -> list[dict[str, Any]]: ...


class ChangeStore(Protocol):
    """Where changes are recorded (enqueue_logs)."""

    async def record(self, request_id: str, change: Change, at: datetime) -> bool: ...


class Poller:
    """Follows the watch set until stopped."""

    def __init__(
        self,
        clearml: StatusSource,
        store: ChangeStore,
        publish: Publish,
        watch: WatchSet,
        poll_s: float,
    ) -> None:
        self._clearml, self._store, self._publish = clearml, store, publish
        self._watch, self._poll_s = watch, poll_s

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `poll_s` until `stop` is set; the tick in hand finishes first."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # a bug must not stop the following of every other request
                log.exception("poll tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_s)

    async def tick(self) -> None:
        """One poll of every followed clone."""
        for behind in [w for w in self._watch.items.values() if w.pending]:
            await self._flush(behind)
        by_clone = self._watch.by_clone()
        for chunk in chunks(list(by_clone)):
            try:
                rows = await self._clearml.statuses(chunk)
            except ClearMLUnavailable as exc:
                log.warning("ClearML unavailable (%s); trying again next tick", exc)
                return
            except ClearMLRejected as exc:
                log.warning("ClearML refused a status poll of %d tasks: %s", len(chunk), exc)
                continue
            for row in rows:
                if (watched := by_clone.get(str(row.get("id")))) is not None:
                    await self._apply(watched, row)

    async def _apply(self, watched: Watched, row: dict[str, Any]) -> None:
        change = observe(watched, row)
        if change is None:
            return
        request_id_var.set(watched.request_id)
        try:
            written = await self._store.record(watched.request_id, change, utcnow())
        except StoreUnavailable as exc:
            log.warning("could not record %s (%s); trying again next tick", change.status, exc)
            return
        event = event_for(watched, change) if written else None
        if written:
            log.info("request %s", change.status)
        watched.status = change.status
        if event is not None:
            watched.pending.append(event)
        await self._flush(watched)

    async def _flush(self, watched: Watched) -> None:
        """Publish the request's pending events in order; drop it once ended and all are out."""
        while watched.pending:
            try:
                await self._publish(watched.pending[0])
            except PublishFailed as exc:
                log.warning("task event not published (%s); trying again next tick", exc)
                return
            watched.pending.pop(0)
        if watched.status in TERMINAL:
            self._watch.drop(watched.request_id)
