"""The notifier's MongoDB adapter: `notifications`, one document per notification, `_id` = the
notification's id (time-ordered, so `_id` order is time order).

Concurrent saves share one `insert_many` (group commit; FerretDB is fast at that and slow at
many updates); a duplicate `_id` means an earlier delivery stored it already. The index on
(user, _id) serves the live stream's resume on MongoDB ("this user's and the operators'
notifications after id X, newest first"); FerretDB answers from `_id` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from runtime.batching import GroupCommit
from runtime.mongo import Doc, store_errors
from schemas.notifications import Notification
from services.notifier.errors import StoreRefused, StoreUnavailable

log = logging.getLogger(__name__)
NOTIFICATIONS = "notifications"
_DUPLICATE_KEY = 11000


def document(notification: Notification, created_at: datetime) -> dict[str, Any]:
    """The stored form: the notification's fields, `_id` for `id`, and when it was published."""
    doc = notification.model_dump(mode="python")
    doc["_id"] = doc.pop("id")
    doc["created_at"] = created_at
    return doc


class NotificationStore:
    """Stores notifications, each once."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._docs = db[NOTIFICATIONS]
        self._inserts: GroupCommit[dict[str, Any], None] = GroupCommit(self._insert)

    async def ensure_indexes(self) -> None:
        """Create the stream's index; a server that refuses it costs speed, not correctness."""
        try:
            with store_errors():
                await self._docs.create_index([("user", ASCENDING), ("_id", DESCENDING)])
        except PyMongoError as exc:
            log.warning("index on notifications not created: %s", exc)

    async def save(self, notification: Notification, created_at: datetime) -> None:
        """Store one notification (with whatever else is being stored)."""
        await self._inserts.submit(document(notification, created_at))

    async def _insert(self, docs: Sequence[dict[str, Any]]) -> list[BaseException | None]:
        try:
            with store_errors():
                await self._docs.insert_many(list(docs), ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            failed = {e["index"] for e in errors if e.get("code") != _DUPLICATE_KEY}
            return [
                StoreRefused(f"insert failed: {errors}") if i in failed else None
                for i in range(len(docs))
            ]
        except StoreUnavailable as exc:
            return [exc] * len(docs)
        return [None] * len(docs)
