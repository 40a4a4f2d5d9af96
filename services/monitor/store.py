"""The monitor's MongoDB adapter over `enqueue_logs` (one document per request, `_id` = request id,
written first by the enqueuer).

Every write is keyed by `_id` (the only lookup FerretDB serves from an index) and guarded by the
document's own status, so a change is recorded once even across restarts and redeliveries. The
one scan, over active requests, runs once at start-up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, store_errors
from schemas.status import ACTIVE, ENDED
from services.monitor.lifecycle import Change, Watched

log = logging.getLogger(__name__)
ENQUEUE_LOGS = "enqueue_logs"
_SEED_FIELDS = {"_id": 1, "clone_id": 1, "status": 1, "user": 1, "task_id": 1, "queue": 1}


class TaskLogStore:
    """Reads the requests to follow; records their status changes."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._logs = db[ENQUEUE_LOGS]

    async def active(self) -> list[Watched]:
        """Requests queued or running, with a clone to follow (one scan, at start-up)."""
        with store_errors():
            cursor = self._logs.find({"status": {"$in": list(ACTIVE)}}, _SEED_FIELDS)
            docs = await cursor.to_list()
        return [w for d in docs if (w := _watched(d)) is not None]

    async def record(self, request_id: str, change: Change, at: datetime) -> bool:
        """Record a change; False when the document already shows it, is already settled, or
        does not exist (nothing written then)."""
        entry: dict[str, Any] = {"status": change.status, "at": at}
        sets: dict[str, Any] = {"status": change.status, "updated_at": at}
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
    )
