"""Opaque ids and the in-memory mapping cache.

An opaque id is HMAC-SHA256(server secret, real ClearML id), hex: stable, not reversible, not
guessable. It is stored with the mapping, so rotating the secret changes only new mappings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging

from schemas.api import TaskMapping
from services.ingest.store import IngestStore, StoreUnavailable

log = logging.getLogger(__name__)


def opaque_id(secret: bytes, real_id: str) -> str:
    """The opaque id users see for a real ClearML id."""
    return hmac.new(secret, real_id.encode(), hashlib.sha256).hexdigest()


class MappingCache:
    """Task mappings in memory, refreshed periodically; a miss falls through to the store, so a
    mapping added by another ingest instance is usable at once."""

    def __init__(self, store: IngestStore, refresh_s: float) -> None:
        self._store, self._refresh_s = store, refresh_s
        self._tasks: dict[str, TaskMapping] = {}

    async def load(self) -> None:
        """Replace the cache with the store's contents."""
        self._tasks = {m.task_id: m for m in await self._store.all_task_mappings()}

    async def task(self, task_id: str) -> TaskMapping | None:
        """The mapping for an opaque task id, or None."""
        found = self._tasks.get(task_id)
        if found is None:
            found = await self._store.task_mapping(task_id)
            if found is not None:
                self._tasks[task_id] = found
        return found

    def put(self, mapping: TaskMapping) -> None:
        """Record a mapping this instance just wrote."""
        self._tasks[mapping.task_id] = mapping

    def drop(self, task_id: str) -> None:
        """Forget a mapping this instance just deleted."""
        self._tasks.pop(task_id, None)

    async def refresh_forever(self) -> None:
        """Reload every `refresh_s` (deletions elsewhere show up within one period)."""
        while True:
            await asyncio.sleep(self._refresh_s)
            with contextlib.suppress(StoreUnavailable):
                await self.load()
