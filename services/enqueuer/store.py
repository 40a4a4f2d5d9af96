"""The enqueuer's MongoDB adapter: `enqueue_logs`, one document per request, `_id` = request id.

Two writes per request on the happy path: a claim (an insert that also tells whether an earlier
delivery got there first; concurrent claims share one `insert_many`) and the final record
(cloned and queued, each with its own time).
Every write is keyed by `_id`, which MongoDB and FerretDB both answer from the primary index.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from runtime.batching import GroupCommit
from runtime.mongo import Doc, store_errors
from schemas.base import Envelope, utcnow
from schemas.enqueue import EnqueueTask
from schemas.status import SETTLED
from services.enqueuer.errors import StoreRefused, StoreUnavailable

ENQUEUE_LOGS = "enqueue_logs"
#: States after which a redelivered request has nothing left to do.


def _entry(status: str, at: datetime, message: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status, "at": at}
    if message:
        entry["message"] = message
    return entry


class EnqueueLogStore:
    """Reads and writes request logs."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._logs = db[ENQUEUE_LOGS]
        self._claims: GroupCommit[Envelope[EnqueueTask], dict[str, Any] | None] = GroupCommit(
            self._insert_claims
        )

    def _base(self, env: Envelope[EnqueueTask]) -> dict[str, Any]:
        p = env.payload
        return {
            "user": env.user,
            "task_id": p.task_id,
            "template_task_id": p.template_task_id,
            "queue": p.queue_name,
            "queue_choice": p.queue_choice,
            "accepted_at": env.created_at,
            "trace_id": env.trace.get("trace_id"),
        }

    async def claim(self, env: Envelope[EnqueueTask]) -> dict[str, Any] | None:
        """Record the request as accepted unless it is known; returns what an earlier delivery
        left (None: this is the first). Concurrent claims share one insert (group commit)."""
        return await self._claims.submit(env)

    async def _insert_claims(
        self, envs: Sequence[Envelope[EnqueueTask]]
    ) -> list[dict[str, Any] | BaseException | None]:
        docs = [
            {
                "_id": env.id,
                **self._base(env),
                "status": "accepted",
                "updated_at": utcnow(),
                "history": [_entry("accepted", env.created_at, env.payload.queue_choice)],
                "latency_ms": {},
            }
            for env in envs
        ]
        try:
            with store_errors():
                await self._logs.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            taken = {
                e["index"] for e in exc.details.get("writeErrors", []) if e.get("code") == 11000
            }
            if len(taken) < len(exc.details.get("writeErrors", [])):
                return [StoreRefused(f"insert failed: {exc.details}")] * len(envs)
            return [await self._prior(env.id) if i in taken else None for i, env in enumerate(envs)]
        except StoreUnavailable as exc:
            return [exc] * len(envs)
        return [None] * len(envs)

    async def _prior(self, request_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._call(self._logs.find_one({"_id": request_id}))
        return found

    async def record_queued(
        self,
        env: Envelope[EnqueueTask],
        clone_id: str,
        cloned_at: datetime | None,
        watched: bool | None,
        latency_ms: dict[str, float],
    ) -> None:
        """The clone and the enqueue, with whether a worker listens and per-step latencies."""
        now = utcnow()
        total = (now - env.created_at).total_seconds() * 1000
        sets: dict[str, Any] = {
            "status": "queued",
            "clone_id": clone_id,
            "queue_watched": watched,
            "updated_at": now,
            "latency_ms.total": round(total, 2),
        }
        sets.update({f"latency_ms.{k}": round(v, 2) for k, v in latency_ms.items()})
        message = None if watched is not False else "No worker listens on this queue right now."
        entries = ([_entry("cloned", cloned_at)] if cloned_at else []) + [
            _entry("queued", now, message)
        ]
        await self._call(
            self._logs.update_one(
                {"_id": env.id}, {"$set": sets, "$push": {"history": {"$each": entries}}}
            )
        )

    async def record_failed(self, env: Envelope[EnqueueTask], message: str) -> bool:
        """The request failed for good; the message is for the flow author. A settled request
        (queued, running, ended, or failed already) is left as it is: a late failure of one
        delivery must not overwrite what another recorded. Returns whether it was written."""
        now = utcnow()
        try:
            await self._call(
                self._logs.update_one(
                    {"_id": env.id, "status": {"$nin": sorted(SETTLED)}},
                    {
                        "$setOnInsert": self._base(env),
                        "$set": {"status": "failed", "error": message, "updated_at": now},
                        "$push": {"history": _entry("failed", now, message)},
                    },
                    upsert=True,
                )
            )
        except DuplicateKeyError:  # the document exists and is settled: the upsert's insert lost
            return False
        return True

    async def _call(self, operation: Any) -> Any:
        with store_errors():
            return await operation
