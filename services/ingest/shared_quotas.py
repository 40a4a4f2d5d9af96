"""Quotas that hold across every ingest copy: counters in MongoDB.

- **Rate:** a sliding window counted in `BUCKETS` time buckets (one document per user, path and
  bucket, `$inc`-ed atomically). The count of "the last `window_s` seconds" is the sum of the
  buckets inside the window plus the oldest bucket weighted by the part of it still inside (the
  sliding-window counter; its error is at most one bucket's share, `window_s / BUCKETS`). One
  round trip per admitted request: buckets that have closed are read once and kept.
- **Concurrent tasks:** one document per accepted enqueue (`task_slots`, `_id` the request id).
  A request inserts its slot first and then counts its user's slots, so two ingests racing for the
  last slot can both refuse but never both pass; at the limit, slots whose request has ended (or
  that are older than `task_slot_max_age_s`) are swept first.

If MongoDB does not answer within `quota_store_timeout_s`, the process falls back to its own
counts (`quotas.py`) and logs it: a paused database slows no caller, and quotas then hold per copy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from runtime.mongo import TRANSIENT_MONGO_ERRORS, Doc
from services.ingest.quotas import ENDED, Lookup

log = logging.getLogger(__name__)

RATES = "quota_counters"
SLOTS = "task_slots"
BUCKETS = 10

T = TypeVar("T")


class StoreDown(Exception):
    """The counters could not be reached in time: the caller falls back to its own counts."""


class Counters(Protocol):
    """Where bucket counts live (MongoDB; a dict in unit tests)."""

    async def add(self, key: str, n: int) -> int: ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, int]: ...


def bucket_key(path: str, bucket_s: float, bucket: int, user: str) -> str:
    """The user goes last: any character in a user name keeps the key unambiguous."""
    return f"{path}|{bucket_s:g}|{bucket}|{user}"


@dataclass
class SharedWindow:
    """At most `limit` requests per user and path in any `window_s`, across processes."""

    counters: Counters
    window_s: float
    clock: Callable[[], float] = time.time
    #: closed buckets are final: read once, kept (bounded: reset when it grows large)
    _closed: dict[str, int] = field(default_factory=dict)

    @property
    def bucket_s(self) -> float:
        return self.window_s / BUCKETS

    async def take(self, user: str, path: str, limit: int) -> float | None:
        """Count one request; None when allowed, else seconds until one would be."""
        now = self.clock()
        current = math.floor(now / self.bucket_s)
        key = bucket_key(path, self.bucket_s, current, user)
        mine = await self.counters.add(key, 1)
        older = await self._closed_counts(user, path, current)
        fraction = now / self.bucket_s - current  # how far into the current bucket
        counted = self._estimate(older, mine, fraction)
        if counted <= limit:
            return None
        await self.counters.add(key, -1)  # a refused request does not use the quota
        return self._wait(older, mine - 1, fraction, limit)

    async def _closed_counts(self, user: str, path: str, current: int) -> list[int]:
        """Counts of the BUCKETS buckets before the current one, oldest first."""
        keys = [bucket_key(path, self.bucket_s, b, user) for b in range(current - BUCKETS, current)]
        missing = [k for k in keys if k not in self._closed]
        if missing:
            if len(self._closed) > 200_000:
                self._closed.clear()
            found = await self.counters.get_many(missing)
            self._closed.update({k: found.get(k, 0) for k in missing})
        return [self._closed[k] for k in keys]

    @staticmethod
    def _estimate(older: list[int], current: int, fraction: float) -> float:
        """The oldest bucket counts for the part of it still inside the window."""
        return older[0] * (1.0 - fraction) + sum(older[1:]) + current

    def _wait(self, older: list[int], current: int, fraction: float, limit: int) -> float:
        """Seconds until one more request fits, if nobody else sends any."""
        counts = [*older, current]
        # Bucket i (0 = oldest) starts leaving the window (i + fraction) buckets from now and is
        # gone one bucket later; find when what is left, plus this request, fits.
        for i, n in enumerate(counts):
            if n == 0:
                continue
            rest = sum(counts[i + 1 :])
            if rest + 1 > limit:
                continue
            share = 1.0 - (limit - 1 - rest) / n  # part of bucket i that must have left
            start = i - fraction  # in buckets from now; the oldest is already partly out
            return max(0.0, (start + max(0.0, share)) * self.bucket_s)
        return self.window_s


@dataclass
class MongoCounters:
    """Bucket counts in `quota_counters`; every call bounded by `timeout_s`."""

    db: AsyncDatabase[Doc]
    timeout_s: float

    async def add(self, key: str, n: int) -> int:
        doc = await self._bounded(
            self.db[RATES].find_one_and_update(
                {"_id": key},
                {"$inc": {"n": n}, "$setOnInsert": {"at": datetime.now(UTC)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        )
        return _count(doc["n"]) if doc else n

    async def get_many(self, keys: Sequence[str]) -> dict[str, int]:
        async def read() -> dict[str, int]:
            cursor = self.db[RATES].find({"_id": {"$in": list(keys)}}, {"n": 1})
            return {str(d["_id"]): _count(d["n"]) async for d in cursor}

        return await self._bounded(read())

    async def forget_before(self, cutoff: datetime) -> None:
        """Drop buckets older than `cutoff` (FerretDB 1.x has no TTL index)."""
        await self._bounded(self.db[RATES].delete_many({"at": {"$lt": cutoff}}))

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except (TimeoutError, *TRANSIENT_MONGO_ERRORS) as e:
            raise StoreDown(str(e) or type(e).__name__) from e


@dataclass
class SharedTasks:
    """Enqueue requests per user that may still be queued or running, across processes."""

    db: AsyncDatabase[Doc]
    lookup: Lookup
    timeout_s: float
    max_age_s: float

    async def reserve(self, user: str, request_id: str, limit: int) -> bool:
        """Take a slot for `request_id`; False (and no slot) when `user` is at the limit."""
        slots = self.db[SLOTS]
        now = datetime.now(UTC)
        try:
            await self._bounded(slots.insert_one({"_id": request_id, "user": user, "at": now}))
        except DuplicateKeyError:
            return True  # the same request again (a retry under the same id) holds one slot
        if await self._bounded(slots.count_documents({"user": user})) <= limit:
            return True
        await self._sweep(user, now)
        if await self._bounded(slots.count_documents({"user": user})) <= limit:
            return True
        await self.release(request_id)
        return False

    async def release(self, request_id: str) -> None:
        """The request never got in, or it ended."""
        await self._bounded(self.db[SLOTS].delete_one({"_id": request_id}))

    async def _sweep(self, user: str, now: datetime) -> None:
        docs: list[dict[str, Any]] = await self._bounded(
            self.db[SLOTS].find({"user": user}).to_list(None)
        )
        too_old = now - timedelta(seconds=self.max_age_s)
        ids = [str(d["_id"]) for d in docs]
        statuses = await asyncio.gather(*(self.lookup(rid) for rid in ids))
        done = [
            rid
            for rid, doc, status in zip(ids, docs, statuses, strict=True)
            if status in ENDED or _aware(doc["at"]) < too_old
        ]
        if done:
            await self._bounded(self.db[SLOTS].delete_many({"_id": {"$in": done}}))

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except (TimeoutError, *TRANSIENT_MONGO_ERRORS) as e:
            raise StoreDown(str(e) or type(e).__name__) from e


def _count(value: object) -> int:
    return value if isinstance(value, int) else int(str(value))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """`task_slots` are counted per user; old rate buckets are dropped by time."""
    await db[SLOTS].create_index("user")
    await db[RATES].create_index("at")
