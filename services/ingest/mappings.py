"""Opaque ids and the in-memory mapping caches.

An opaque id is HMAC-SHA256(server secret, real ClearML id), hex: stable, not reversible, not
guessable. It is stored with the mapping, so rotating the secret changes only new mappings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from typing import Generic

from services.ingest.store import IngestStore, Kind, M, StoreUnavailable


def opaque_id(secret: bytes, real_id: str) -> str:
    """The opaque id users see for a real ClearML id."""
    return hmac.new(secret, real_id.encode(), hashlib.sha256).hexdigest()


class MappingCache(Generic[M]):
    """One kind of mapping in memory, refreshed periodically; a miss falls through to the store,
    so a mapping added by another ingest instance is usable at once."""

    def __init__(self, store: IngestStore, kind: Kind[M], refresh_s: float) -> None:
        self._store, self._kind, self._refresh_s = store, kind, refresh_s
        self._items: dict[str, M] = {}

    async def load(self) -> None:
        """Replace the cache with the store's contents."""
        self._items = {self._kind.key(m): m for m in await self._store.all(self._kind)}

    async def get(self, key: str) -> M | None:
        """The mapping under `key`, or None."""
        found = self._items.get(key)
        if found is None:
            found = await self._store.one(self._kind, key)
            if found is not None:
                self._items[key] = found
        return found

    def put(self, mapping: M) -> None:
        """Record a mapping this instance just wrote."""
        self._items[self._kind.key(mapping)] = mapping

    def drop(self, key: str) -> None:
        """Forget a mapping this instance just deleted."""
        self._items.pop(key, None)

    async def refresh_forever(self) -> None:
        """Reload every `refresh_s` (deletions elsewhere show up within one period)."""
        while True:
            await asyncio.sleep(self._refresh_s)
            with contextlib.suppress(StoreUnavailable):
                await self.load()
