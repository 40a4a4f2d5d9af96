"""Reads of the log read models the logger keeps (see schemas/views.py for their layout).

Every read is an `_id` lookup, the only one FerretDB serves from an index, so a page costs the
same with a thousand logs or a million: one directory, the hour buckets needed to fill the page
(a few at a time, newest first), then the page's view documents. A page stops after
`max_buckets` hours per path and then says where it stopped (a short page with a cursor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import TRANSIENT_MONGO_ERRORS, Doc
from schemas.views import (
    LOG_INDEX,
    VIEW_DAILY,
    VIEW_OF,
    bucket_id,
    daily_id,
    directory_id,
    hour_key,
    hour_start,
)
from services.ingest.logquery import LogFilter, Position
from services.ingest.store import StoreUnavailable

HOUR_MS = 3_600_000
#: Buckets read at once while walking back.
PREFETCH = 4


@dataclass(frozen=True)
class Candidate:
    """A log that matches, from the index."""

    at: int
    request_id: str
    path: str

    @property
    def position(self) -> Position:
        return (self.at, self.request_id)


def _hour_ms(key: str) -> int:
    return int(hour_start(key).timestamp() * 1000)


class LogReader:
    """Pages of logs, and the dashboard's daily documents."""

    def __init__(self, db: AsyncDatabase[Doc], *, max_buckets: int = 96, concurrency: int = 32):
        self._db, self._max_buckets = db, max_buckets
        self._gate = asyncio.Semaphore(concurrency)

    @property
    def db(self) -> AsyncDatabase[Doc]:
        """The database read."""
        return self._db

    async def page(
        self, flt: LogFilter, after: Position, limit: int
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """Up to `limit` view documents older than `after`, newest first, and the position of
        the next page (None: the end)."""
        walks = await self._all(self._walk(p, flt, after, limit) for p in flt.paths)
        bounds = [b for _, b in walks if b is not None]
        floor = max(bounds) if bounds else None  # every match above it has been seen
        found = sorted(
            (c for cands, _ in walks for c in cands if floor is None or c.position > floor),
            key=lambda c: c.position,
            reverse=True,
        )
        page = found[:limit]
        if len(found) > limit or (len(page) == limit and floor is not None):
            following: Position | None = page[-1].position
        else:
            following = floor
        docs = await self._all(self._one(VIEW_OF[c.path], c.request_id) for c in page)
        return [d for d in docs if d is not None], following

    async def _walk(
        self, path: str, flt: LogFilter, after: Position, limit: int
    ) -> tuple[list[Candidate], Position | None]:
        """Matches on one path, walking hours back from `after`; and the position above which
        the walk saw everything (None: it saw everything)."""
        dim, value = flt.dimension()
        directory = await self._one(LOG_INDEX, directory_id(path, dim, value)) or {}
        low = _hour_ms(hour_key(flt.since)) if flt.since else -1
        seen_hours: dict[str, Any] = directory.get("h") or {}  # type: ignore[assignment]
        hours = [h for h in sorted(seen_hours, reverse=True) if low <= _hour_ms(h) < after[0]]
        found: list[Candidate] = []
        for i in range(0, min(len(hours), self._max_buckets), PREFETCH):
            chunk = hours[i : min(i + PREFETCH, self._max_buckets)]
            buckets = await self._all(
                self._one(LOG_INDEX, bucket_id(path, dim, value, h)) for h in chunk
            )
            for bucket in buckets:
                found.extend(_matches(bucket, path, flt, after))
            if len(found) >= limit:
                return found, (_hour_ms(chunk[-1]), "")
        if len(hours) > self._max_buckets:
            return found, (_hour_ms(hours[self._max_buckets - 1]), "")
        return found, None

    async def daily(self, path: str, days: Iterable[str]) -> dict[str, Doc]:
        """The `view_requests_daily` documents of these days that exist."""
        keys = list(days)
        docs = await self._all(self._one(VIEW_DAILY, daily_id(path, d)) for d in keys)
        return {d: doc for d, doc in zip(keys, docs, strict=True) if doc is not None}

    async def _one(self, collection: str, key: str) -> Doc | None:
        async with self._gate:
            found: Doc | None = await self._db[collection].find_one({"_id": key})
            return found

    async def _all(self, ops: Iterable[Awaitable[Any]]) -> list[Any]:
        try:
            return list(await asyncio.gather(*ops))
        except TRANSIENT_MONGO_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc


def _matches(bucket: Doc | None, path: str, flt: LogFilter, after: Position) -> Iterable[Candidate]:
    entries = (bucket or {}).get("entries") or {}
    assert isinstance(entries, dict)
    for rid, entry in entries.items():
        if isinstance(entry, list) and (entry[0], rid) < after and flt.accepts(entry):
            yield Candidate(int(entry[0]), rid, path)
