"""One writer at a time per document, across processes, where the server's updates are not
atomic: FerretDB 1.x applies an update outside a transaction on its SQLite backend (FerretDB
issue #3040), so two processes updating one document at once can lose one update (two `$inc`
of a counter count one). MongoDB's updates are atomic, and there `held` costs nothing.

A lock is a document in `doc_locks` (`_id` the locked document's collection and key), taken by
a unique `_id` insert (atomic on FerretDB too) and deleted after the write. A lock older than
`stale_s` was left by a dead process and is taken over (a write takes milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from runtime.mongo import Doc, StoreUnavailable, store_errors
from schemas.collections import DOC_LOCKS


class LockBusy(StoreUnavailable):
    """Another process held the document past the wait."""


@dataclass
class DocLocks:
    """Cross-process locks of single documents, on when `on` (the server is FerretDB)."""

    db: AsyncDatabase[Doc]
    on: bool
    wait_s: float = 5.0
    stale_s: float = 2.0

    @contextlib.asynccontextmanager
    async def held(self, collection: str, key: str) -> AsyncIterator[None]:
        """Hold the lock of one document for the block (nothing when off)."""
        if not self.on:
            yield
            return
        lock_id = f"{collection}|{key}"
        locks = self.db[DOC_LOCKS]
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                with store_errors():
                    await locks.insert_one({"_id": lock_id, "at": datetime.now(UTC)})
                break
            except DuplicateKeyError:
                stale = datetime.now(UTC) - timedelta(seconds=self.stale_s)
                with store_errors():
                    await locks.delete_one({"_id": lock_id, "at": {"$lt": stale}})
                if time.monotonic() > deadline:
                    raise LockBusy(f"{lock_id} held past {self.wait_s:g} s") from None
                await asyncio.sleep(random.uniform(0.001, 0.005))
        try:
            yield
        finally:
            with contextlib.suppress(StoreUnavailable), store_errors():  # else: stale, taken over
                await locks.delete_one({"_id": lock_id})
