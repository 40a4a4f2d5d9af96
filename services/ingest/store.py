"""Ingest's MongoDB adapter: task mappings (read and admin writes) and request logs (read).

Documents are keyed by `_id` (the opaque id, the request id): every hot lookup is an `_id`
lookup, which both MongoDB and FerretDB answer from the primary index.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from runtime.mongo import TRANSIENT_MONGO_ERRORS, Doc
from runtime.retry import RetriableError
from schemas.api import TaskMapping

TASK_MAPPINGS = "task_mappings"
ENQUEUE_LOGS = "enqueue_logs"


class StoreUnavailable(RetriableError):
    """MongoDB did not answer."""


class MappingExists(Exception):
    """The opaque id is already mapped."""


def _mapping(doc: dict[str, Any]) -> TaskMapping:
    return TaskMapping(task_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


class IngestStore:
    """Reads and writes what ingest owns."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._mappings = db[TASK_MAPPINGS]
        self._logs = db[ENQUEUE_LOGS]

    async def all_task_mappings(self) -> list[TaskMapping]:
        """Every mapping (a small collection: one document per template)."""
        try:
            return [_mapping(d) async for d in self._mappings.find({})]
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def task_mapping(self, task_id: str) -> TaskMapping | None:
        """One mapping by opaque id."""
        try:
            doc = await self._mappings.find_one({"_id": task_id})
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        return _mapping(doc) if doc else None

    async def add_task_mapping(self, mapping: TaskMapping) -> None:
        """Insert; MappingExists when the opaque id is taken."""
        doc = mapping.model_dump(exclude={"task_id"})
        try:
            await self._mappings.insert_one({"_id": mapping.task_id, **doc})
        except DuplicateKeyError as exc:
            raise MappingExists(mapping.task_id) from exc

    async def delete_task_mapping(self, task_id: str) -> bool:
        """Remove; False when there was none."""
        result = await self._mappings.delete_one({"_id": task_id})
        return result.deleted_count == 1

    async def enqueue_log(self, request_id: str) -> dict[str, Any] | None:
        """The request's log document, if the enqueuer has written it."""
        try:
            return await self._logs.find_one({"_id": request_id})
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc


def utcnow() -> datetime:
    """Now, UTC."""
    return datetime.now(UTC)
