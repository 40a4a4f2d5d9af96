"""The enqueuer's MongoDB adapter: `enqueue_logs`, one document per request, `_id` = request id.

Two writes per request on the happy path (cloned, queued): the 'accepted' entry is stamped with
the envelope's own creation time, so it costs no write of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from runtime.mongo import TRANSIENT_MONGO_ERRORS, Doc
from schemas.base import Envelope, utcnow
from schemas.enqueue import EnqueueTask
from services.enqueuer.errors import StoreUnavailable

ENQUEUE_LOGS = "enqueue_logs"
#: States after which a redelivered request has nothing left to do.
SETTLED = frozenset({"queued", "running", "completed", "failed", "stopped"})


def _entry(status: str, at: datetime, message: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status, "at": at}
    if message:
        entry["message"] = message
    return entry


class EnqueueLogStore:
    """Reads and writes request logs."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._logs = db[ENQUEUE_LOGS]

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """The log document, or None."""
        try:
            return await self._logs.find_one({"_id": request_id})
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _base(self, env: Envelope[EnqueueTask]) -> dict[str, Any]:
        p = env.payload
        return {
            "_id": env.id,
            "user": env.user,
            "task_id": p.task_id,
            "template_task_id": p.template_task_id,
            "queue": p.queue_name,
            "accepted_at": env.created_at,
        }

    async def record_cloned(self, env: Envelope[EnqueueTask], clone_id: str, ms: float) -> None:
        """First write: accepted (at the envelope's time) and cloned."""
        now = utcnow()
        doc = {
            **self._base(env),
            "status": "cloned",
            "clone_id": clone_id,
            "updated_at": now,
            "history": [_entry("accepted", env.created_at), _entry("cloned", now)],
            "latency_ms": {"clone": ms},
        }
        try:
            await self._logs.insert_one(doc)
        except DuplicateKeyError:
            await self._update(env.id, {"$set": {"clone_id": clone_id, "status": "cloned"}})
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def record_queued(
        self, env: Envelope[EnqueueTask], watched: bool | None, latency_ms: dict[str, float]
    ) -> None:
        """Second write: queued, with whether a worker listens and the per-step latencies."""
        now = utcnow()
        total = (now - env.created_at).total_seconds() * 1000
        sets: dict[str, Any] = {
            "status": "queued",
            "queue_watched": watched,
            "updated_at": now,
            "latency_ms.total": round(total, 2),
        }
        sets.update({f"latency_ms.{k}": round(v, 2) for k, v in latency_ms.items()})
        message = None if watched is not False else "No worker listens on this queue right now."
        await self._update(
            env.id, {"$set": sets, "$push": {"history": _entry("queued", now, message)}}
        )

    async def record_failed(self, env: Envelope[EnqueueTask], message: str) -> None:
        """The request failed for good; the message is for the flow author."""
        now = utcnow()
        try:
            await self._logs.update_one(
                {"_id": env.id},
                {
                    "$setOnInsert": {k: v for k, v in self._base(env).items() if k != "_id"},
                    "$set": {"status": "failed", "error": message, "updated_at": now},
                    "$push": {"history": _entry("failed", now, message)},
                },
                upsert=True,
            )
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def _update(self, request_id: str, update: dict[str, Any]) -> None:
        try:
            await self._logs.update_one({"_id": request_id}, update)
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
