"""The monitor's MongoDB adapter over `enqueue_logs` (one document per request, `_id` = request id,
written first by the enqueuer).

Every write is keyed by `_id` (the only lookup FerretDB serves from an index) and guarded by the
document's own status, so a change is recorded once even across restarts and redeliveries. The
one scan, over active requests, runs when a copy is given partitions.

A change's task event is written with it, into the document's `outbox` (one update: both or
neither), and taken out once Kafka has it (`sent`). A copy killed between the two leaves it
there, and whoever follows the request next publishes it: an event is published at least once,
never lost (its readers already take a redelivery as one: the logger folds once per request and
status, the notifier's notification id is the event's).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, store_errors
from schemas.collections import ENQUEUE_LOGS
from schemas.status import ACTIVE, ENDED
from schemas.tasks import TaskEvent, TaskEventKind
from services.monitor.lifecycle import Change, Watched

log = logging.getLogger(__name__)
_SEED_FIELDS = {
    "_id": 1,
    "clone_id": 1,
    "status": 1,
    "user": 1,
    "task_id": 1,
    "queue": 1,
    "outbox": 1,
}


class TaskLogStore:
    """Reads the requests to follow; records their status changes."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._logs = db[ENQUEUE_LOGS]

    async def active(self) -> list[Watched]:
        """Requests queued or running, with a clone to follow, and those with an event recorded
        but not yet published (one scan)."""
        unsent = [{f"outbox.{kind.value}": {"$exists": True}} for kind in TaskEventKind]
        wanted = {"$or": [{"status": {"$in": list(ACTIVE)}}, *unsent]}
        with store_errors():
            docs = await self._logs.find(wanted, _SEED_FIELDS).to_list()
        return [w for d in docs if (w := _watched(d)) is not None]

    async def record(
        self, request_id: str, change: Change, at: datetime, event: TaskEvent | None = None
    ) -> bool:
        """Record a change, and its event in the outbox; False when the document already shows
        it, is already settled, or does not exist (nothing written then)."""
        entry: dict[str, Any] = {"status": change.status, "at": at}
        sets: dict[str, Any] = {"status": change.status, "updated_at": at}
        if event is not None:  # by kind: FerretDB 1.x's $pull takes no condition
            sets[f"outbox.{event.kind.value}"] = event.model_dump(mode="json")
        if change.message:
            entry["message"] = sets["error"] = change.message
        if change.results is not None:
            sets["results"] = change.results.model_dump(mode="json")
            sets["result_uris"] = change.uris
        with store_errors():
            before = await self._logs.find_one_and_update(
                {"_id": request_id, "status": {"$nin": [change.status, *ENDED]}},
                {"$set": sets, "$push": {"history": entry}},
            )  # no projection: FerretDB's findAndModify does not implement `fields`
        return before is not None

    async def sent(self, request_id: str, event: TaskEvent) -> None:
        """Kafka has the event: out of the outbox."""
        with store_errors():
            await self._logs.update_one(
                {"_id": request_id}, {"$unset": {f"outbox.{event.kind.value}": ""}}
            )


def _watched(doc: dict[str, Any]) -> Watched | None:
    if not doc.get("clone_id"):
        log.warning("request %s is %s but has no clone; not followed", doc["_id"], doc["status"])
        return None
    return Watched(
        request_id=str(doc["_id"]),
        clone_id=str(doc["clone_id"]),
        status=str(doc["status"]),
        user=doc.get("user"),
        task_id=str(doc.get("task_id") or ""),
        queue=doc.get("queue"),
        pending=[  # in the order a request lives them
            TaskEvent.model_validate(found)
            for kind in TaskEventKind
            if (found := (doc.get("outbox") or {}).get(kind.value)) is not None
        ],
    )
