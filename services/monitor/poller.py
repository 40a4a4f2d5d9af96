"""The poll loop: every `poll_s`, ask ClearML for the status of every followed clone, record what
changed on the request's log, then publish it as a task event. A failed run's message is its
own error, read from the tail of its console log; a completed run's change carries what it
produced (the last value of each scalar, its artifacts and output models). A clone that stops
appearing (deleted on the server) or is back in `created` (reset) for `vanish_polls` polls in a
row ends its request as stopped, with words saying so, rather than leaving it queued or running
for ever.

Order of effects per change, and why: the log document first, with the event in its outbox (what
the flow author reads, and what survives a crash), then the in-memory status, then the event,
then its removal from the outbox. An event whose publish failed stays pending on the request and
is sent again on the next tick, so a Kafka hiccup delays it but never loses it; nor does a crash
(the next copy to follow the request finds it in the outbox); a request leaves the watch set only
when it has ended *and* its events are out. A ClearML or MongoDB
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
from schemas.status import ENDED
from schemas.tasks import TaskEvent
from services.monitor.clearml import chunks
from services.monitor.errors import PublishFailed, StoreUnavailable
from services.monitor.lifecycle import (
    Change,
    Watched,
    WatchSet,
    absent,
    event_for,
    human_message,
    observe,
    results_from,
    run_error,
)
from services.monitor.shares import Shares

log = logging.getLogger(__name__)

Publish = Callable[[TaskEvent], Awaitable[None]]


class StatusSource(Protocol):
    """Where task statuses and a failed run's console log come from (ClearML)."""

    async def statuses(self, task_ids: list[str]) -> list[dict[str, Any]]: ...
    async def task_log(self, task_id: str, lines: int) -> list[dict[str, Any]]: ...
    async def results(
        self, task_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]: ...


class ChangeStore(Protocol):
    """Where changes are recorded (enqueue_logs)."""

    async def record(
        self, request_id: str, change: Change, at: datetime, event: TaskEvent | None = None
    ) -> bool: ...

    async def sent(self, request_id: str, event: TaskEvent) -> None: ...


class Poller:
    """Follows the watch set until stopped."""

    def __init__(
        self,
        clearml: StatusSource,
        store: ChangeStore,
        publish: Publish,
        watch: WatchSet,
        poll_s: float,
        *,
        vanish_polls: int = 5,
        log_lines: int = 100,
    ) -> None:
        self._clearml, self._store, self._publish = clearml, store, publish
        self._watch, self._poll_s = watch, poll_s
        self._vanish_polls, self._log_lines = vanish_polls, log_lines

    async def run(self, stop: asyncio.Event, shares: Shares | None = None) -> None:
        """Tick every `poll_s` until `stop` is set; the tick in hand finishes first. With
        `shares` (many copies), a tick holds its lock (a revocation waits for it) and first
        loads the requests of partitions assigned but not loaded yet."""
        while not stop.is_set():
            try:
                if shares is None:
                    await self.tick()
                else:
                    async with shares.lock:
                        await shares.load()
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
            found = {str(row.get("id")): row for row in rows}
            for clone in chunk:
                watched, row = by_clone[clone], found.get(clone)
                gone = absent(watched, row, self._vanish_polls)
                if gone is not None:
                    await self._record(watched, gone)
                elif row is not None:
                    await self._apply(watched, row)

    async def _apply(self, watched: Watched, row: dict[str, Any]) -> None:
        change = observe(watched, row)
        if change is None:
            return
        request_id_var.set(watched.request_id)
        if change.status == "failed":
            error = await self._run_error(watched.clone_id)
            if error is not None:
                message = human_message(
                    "failed", row.get("status_message"), row.get("status_reason"), error
                )
                change = Change(change.status, message)
        elif change.status == "completed":
            change = await self._with_results(watched.clone_id, change)
        await self._record(watched, change)

    async def _with_results(self, clone_id: str, change: Change) -> Change:
        """The completion with what the run produced; without, when ClearML cannot say (the
        completion is not held back for it)."""
        try:
            task, models, scalars = await self._clearml.results(clone_id)
        except (ClearMLUnavailable, ClearMLRejected) as exc:
            log.warning(
                "results of %s not read (%s); recording the completion alone", clone_id, exc
            )
            return change
        results, uris = results_from(task, models, scalars)
        return Change(change.status, change.message, results, uris)

    async def _run_error(self, clone_id: str) -> str | None:
        """The failed run's own error from its console log; None when it cannot be read (the
        status's own words are used then)."""
        try:
            return run_error(await self._clearml.task_log(clone_id, self._log_lines))
        except (ClearMLUnavailable, ClearMLRejected) as exc:
            log.warning("console log of %s not read (%s); using the status's words", clone_id, exc)
            return None

    async def _record(self, watched: Watched, change: Change) -> None:
        request_id_var.set(watched.request_id)
        event = event_for(watched, change)
        try:
            written = await self._store.record(watched.request_id, change, utcnow(), event)
        except StoreUnavailable as exc:
            log.warning("could not record %s (%s); trying again next tick", change.status, exc)
            return
        if written:
            log.info("request %s", change.status)
        watched.status = change.status
        if written and event is not None:
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
            event = watched.pending.pop(0)
            try:
                await self._store.sent(watched.request_id, event)
            except StoreUnavailable as exc:  # left in the outbox: published again after a restart
                log.warning("task event %s sent but not marked so (%s)", event.kind.value, exc)
        if watched.status in ENDED:
            self._watch.drop(watched.request_id)
