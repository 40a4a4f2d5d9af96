"""Handling RequestLogged (mlbus.logs) and TaskEvent (mlbus.events.task): each message is one
fact, folded into the read models once per (request id, status), an on-demand call once.

An on-demand call's RequestLogged carries its raw log (`record`): the logger is the one writer of
`ondemand_logs`, and writes it before folding (insert once by request id: the first outcome of a
call stays, a later one of the same call is a duplicate). The router publishes it with the reply
and commits the request only after the broker has it, so a router that dies loses no log.

Facts from concurrent messages share one fold (group commit): one `insert_many` of claims, one
read of each raw log, one write per read-model document. The enqueuer's "queued" and "enqueue
failed" arrive twice, as RequestLogged and as a task event: the key makes them one fact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from runtime import metrics
from runtime.batching import GroupCommit
from schemas.base import Envelope
from schemas.logs import RequestLogged
from schemas.status import COUNTED
from schemas.tasks import TaskEvent, TaskEventKind
from services.logger.errors import StoreUnavailable
from services.logger.fold import Fact, Writes, effects
from services.logger.store import ViewStore

log = logging.getLogger(__name__)

#: Task event kind → (status, decides the request, is an error).
TASK_FACTS: dict[TaskEventKind, tuple[str, bool, bool]] = {
    TaskEventKind.ENQUEUED: ("queued", True, False),
    TaskEventKind.ENQUEUE_FAILED: ("failed", True, True),
    TaskEventKind.STARTED: ("running", False, False),
    TaskEventKind.COMPLETED: ("completed", False, False),
    TaskEventKind.FAILED: ("failed", False, False),
    TaskEventKind.STOPPED: ("stopped", False, False),
}


def raw_log(entry: RequestLogged) -> dict[str, Any] | None:
    """The raw log document an on-demand call's RequestLogged carries (`ondemand_logs`: the
    router's own fields, keyed by request id); None when it carries none."""
    if entry.path != "ondemand" or entry.record is None:
        return None
    doc: dict[str, Any] = {"_id": entry.request_id, "user": entry.user, "status": entry.status}
    return doc | entry.record.model_dump()


def fact_of_log(entry: RequestLogged) -> Fact:
    """The fact a RequestLogged states."""
    ondemand = entry.path == "ondemand"
    return Fact(
        path=entry.path,
        request_id=entry.request_id,
        status=entry.status,
        at=entry.at,
        counted=ondemand or entry.status in COUNTED,
        error=entry.status != ("ok" if ondemand else "queued"),
        accepted_at=entry.accepted_at,
        user=entry.user,
        target=entry.target,
        latency_ms=entry.latency_ms,
        details=entry.details,
        raw=raw_log(entry),
    )


def fact_of_task(event: TaskEvent) -> Fact:
    """The fact a task event states."""
    status, counted, error = TASK_FACTS[event.kind]
    return Fact(
        path="enqueue",
        request_id=event.request_id,
        status=status,
        at=event.at,
        counted=counted,
        error=error,
        user=event.user,
        target=event.task_id,
        details={"message": event.message} if event.message else {},
    )


class Folder:
    """Folds facts into the read models, concurrent ones together."""

    def __init__(self, store: ViewStore, max_batch: int = 500) -> None:
        self._store = store
        self._commit: GroupCommit[Fact, bool] = GroupCommit(self._flush, max_batch)
        self._applied: set[str] = set()  # applied here, "done" mark not yet written

    async def fold(self, fact: Fact) -> bool:
        """Fold one fact; False when it was folded before (a redelivery)."""
        return await self._commit.submit(fact)

    async def _flush(self, facts: Sequence[Fact]) -> list[bool | BaseException]:
        # The raw logs the facts bring go in first (the first of a request's is the one kept):
        # the fold reads back those that were there already.
        try:
            stored = await self._store.insert_raw([f.raw for f in facts if f.raw is not None])
        except StoreUnavailable as exc:
            return [exc] * len(facts)
        # Keys applied here whose "done" mark failed: only the mark is left to write.
        marking = {f.key for f in facts if f.key in self._applied}
        if marking:
            try:
                await self._store.mark_done(sorted(marking))
            except StoreUnavailable as exc:
                return [exc] * len(facts)
            self._applied -= marking
        rest = sorted({f.key for f in facts} - marking)
        try:
            claimed = await self._store.claim(rest)
        except StoreUnavailable as exc:
            return [exc] * len(facts)
        todo, seen = [], set()
        for f in facts:  # a key twice in one batch folds once
            if f.key in claimed and f.key not in seen:
                todo.append(f)
                seen.add(f.key)
        try:
            known = {("ondemand", rid): doc for rid, doc in stored.items()}
            raws = known | await self._store.raw(
                (f.path, f.request_id) for f in todo if (f.path, f.request_id) not in known
            )
            writes = Writes()
            for f in todo:
                effects(f, raws.get((f.path, f.request_id)), writes, buckets=self._store.buckets)
            await self._store.apply(writes)
        except StoreUnavailable as exc:  # not applied: the claims stay not done, folded again
            return [exc if f.key in seen else False for f in facts]
        try:
            await self._store.mark_done(sorted(seen))
        except StoreUnavailable as exc:  # applied: remember, so a retry only marks them
            self._applied |= seen
            return [exc if f.key in seen else False for f in facts]
        done = {id(f) for f in todo} | {id(f) for f in facts if f.key in marking}
        return [id(f) in done for f in facts]


class LogsHandler:
    """mlbus.logs: one RequestLogged, one fact."""

    def __init__(self, folder: Folder) -> None:
        self._folder = folder

    async def __call__(self, env: Envelope[RequestLogged]) -> None:
        await _fold(self._folder, fact_of_log(env.payload), "logs")


class TaskEventsHandler:
    """mlbus.events.task: one task event, one fact."""

    def __init__(self, folder: Folder) -> None:
        self._folder = folder

    async def __call__(self, env: Envelope[TaskEvent]) -> None:
        await _fold(self._folder, fact_of_task(env.payload), "tasks")


async def _fold(folder: Folder, fact: Fact, source: str) -> None:
    folded = await folder.fold(fact)
    metrics.LOG_FOLDS.labels(source, "folded" if folded else "duplicate").inc()
    if not folded:
        log.debug("%s already folded", fact.key)
