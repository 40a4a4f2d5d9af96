"""The monitor's MongoDB adapter for the resource read models: `resources` (one document per
machine, `_id` = machine id) and `queues` (one per ClearML queue, `_id` = queue id).

Each write replaces one document by `_id` with upsert: the only lookup FerretDB serves from an
index, and idempotent, so a write repeated after a failure or by a second monitor is harmless.
Writes run a few at a time (FerretDB is slow with many updates in one bulk_write).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, store_errors
from schemas.resources import QueueState, ResourceState
from services.monitor.errors import StoreUnavailable

log = logging.getLogger(__name__)
RESOURCES = "resources"
QUEUES = "queues"
#: Replaces in flight at once.
CONCURRENCY = 8


class ReadModelStore:
    """Writes resource and queue states; reads machines back at start-up."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._resources, self._queues = db[RESOURCES], db[QUEUES]
        self._gate = asyncio.Semaphore(CONCURRENCY)

    async def machines(self) -> list[ResourceState]:
        """Every stored machine state (one scan at start-up, so `since` survives a restart)."""
        with store_errors():
            docs = await self._resources.find({}).to_list()
        states = []
        for doc in docs:
            try:
                states.append(ResourceState.model_validate({**doc, "machine_id": doc["_id"]}))
            except ValueError as exc:
                log.warning("stored machine %s unreadable, ignored: %s", doc.get("_id"), exc)
        return states

    async def put(self, states: Sequence[ResourceState | QueueState]) -> None:
        """Replace each state's document (StoreUnavailable when any write failed)."""
        results = await asyncio.gather(*(self._put(s) for s in states), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for bug in (r for r in failed if not isinstance(r, StoreUnavailable)):
            raise bug
        if failed:
            raise StoreUnavailable(f"{len(failed)} of {len(states)} writes failed: {failed[0]}")

    async def _put(self, state: ResourceState | QueueState) -> None:
        if isinstance(state, ResourceState):
            collection, key = self._resources, state.machine_id
        else:
            collection, key = self._queues, state.queue_id
        doc: Doc = {"_id": key, **state.model_dump(mode="python")}
        async with self._gate:
            with store_errors():
                await collection.replace_one({"_id": key}, doc, upsert=True)
