"""Ingest's MongoDB adapter: the mappings (read, and admin writes) and request logs (read).

Documents are keyed by `_id` (the opaque id, `<machine>/<endpoint>`, the request id): every hot
lookup is an `_id` lookup, which both MongoDB and FerretDB answer from the primary index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from runtime.mongo import Doc, store_errors
from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export
from schemas.api import EndpointMapping, ServingMachine, TaskMapping

M = TypeVar("M", bound=BaseModel)


class MappingExists(Exception):
    """The id is already mapped."""


@dataclass(frozen=True)
class Kind(Generic[M]):
    """One kind of mapping: its collection, model, and how its `_id` is made."""

    collection: str
    model: type[M]
    key_fields: tuple[str, ...]
    id_field: str | None = None  # the model field that holds `_id`, if the model shows it

    def key(self, mapping: M) -> str:
        return "/".join(str(getattr(mapping, f)) for f in self.key_fields)

    def to_doc(self, mapping: M) -> dict[str, Any]:
        doc = mapping.model_dump(exclude={self.id_field} if self.id_field else None)
        return {"_id": self.key(mapping), **doc}

    def from_doc(self, doc: dict[str, Any]) -> M:
        fields = {k: v for k, v in doc.items() if k != "_id"}
        if self.id_field:
            fields[self.id_field] = doc["_id"]
        return self.model(**fields)


TASKS = Kind("task_mappings", TaskMapping, ("task_id",), "task_id")
MACHINES = Kind("serving_machines", ServingMachine, ("machine_id",), "machine_id")
ENDPOINTS = Kind("endpoint_mappings", EndpointMapping, ("machine_id", "endpoint"))
ENQUEUE_LOGS = "enqueue_logs"
NOTIFICATIONS = "notifications"


class IngestStore:
    """Reads and writes what ingest owns."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db

    async def all(self, kind: Kind[M]) -> list[M]:
        """Every mapping of a kind (small collections: one document per model or service)."""
        with store_errors():
            return [kind.from_doc(d) async for d in self._db[kind.collection].find({})]

    async def one(self, kind: Kind[M], key: str) -> M | None:
        """One mapping by its key."""
        with store_errors():
            doc = await self._db[kind.collection].find_one({"_id": key})
        return kind.from_doc(doc) if doc else None

    async def add(self, kind: Kind[M], mapping: M) -> None:
        """Insert; MappingExists when the key is taken."""
        try:
            await self._db[kind.collection].insert_one(kind.to_doc(mapping))
        except DuplicateKeyError as exc:
            raise MappingExists(kind.key(mapping)) from exc

    async def delete(self, kind: Kind[Any], key: str) -> bool:
        """Remove; False when there was none."""
        result = await self._db[kind.collection].delete_one({"_id": key})
        return result.deleted_count == 1

    async def enqueue_log(self, request_id: str) -> dict[str, Any] | None:
        """The request's log document, if the enqueuer has written it."""
        with store_errors():
            return await self._db[ENQUEUE_LOGS].find_one({"_id": request_id})

    async def enqueue_status(self, request_id: str) -> str | None:
        """The request's status, or None when unknown or unreadable (counted as still active)."""
        try:
            with store_errors():
                doc = await self._db[ENQUEUE_LOGS].find_one({"_id": request_id}, {"status": 1})
        except StoreUnavailable:
            return None
        return str(doc["status"]) if doc else None

    async def notifications(
        self, user: str | None, *, after: str | None = None, before: str | None = None, limit: int
    ) -> list[dict[str, Any]]:
        """Stored notifications by id (time order): `after` one, oldest first, or `before` one
        (or the newest), newest first; only `user`'s when a user is given."""
        query: dict[str, Any] = {} if user is None else {"user": user}
        if after is not None:
            query["_id"] = {"$gt": after}
        elif before is not None:
            query["_id"] = {"$lt": before}
        order = 1 if after is not None else -1
        with store_errors():
            cursor = self._db[NOTIFICATIONS].find(query).sort("_id", order).limit(limit)
            return [doc async for doc in cursor]
