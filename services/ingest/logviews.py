"""Reads of the log read models the logger keeps (see schemas/views.py for their layout).

On MongoDB a page is a find on the view documents, sorted and filtered by their indexes. On
FerretDB (SQLite, which serves no index but `_id`), every read is an `_id` lookup, so a page
costs the same with a thousand logs or a million: the directory of days, the days' directories
of slots, and the buckets needed to fill the page (both a few at a time, newest first). A bucket
entry carries its request's whole view document, so there is no lookup per row (FerretDB answers
`$in` on `_id` by a scan). A page stops after `max_buckets` slots per path and then says where
it stopped (a short page with a cursor).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, StoreUnavailable, server_is_ferretdb, store_errors
from schemas.collections import LOG_INDEX, VIEW_DAILY
from schemas.views import (
    VIEW_OF,
    bucket_id,
    daily_id,
    day_key,
    directory_id,
    slot_key,
    slot_start_ms,
)
from services.ingest.logquery import LogFilter, Position

log = logging.getLogger(__name__)

#: The order of a page read by the server's indexes (schemas/collections.py's VIEW_INDEXES).
VIEW_ORDER = [("at_ms", -1), ("_id", -1)]

#: Buckets read at once while walking back: one first (often enough: a bucket holds tens of
#: rows), then more at a time, up to the last, so that a dense filter parses little that it
#: does not show and a sparse one needs few round trips. Day directories are read the same way.
PREFETCH = (1, 2, 4, 8)
#: How long a day's dashboard document is served from memory before it is read again (TTL),
#: and the most it may be served late (bound): today and yesterday 2 s and 10 s, the days
#: before ten minutes and an hour (such a day changes only when a long run that started then
#: ends).
#: Between the two, a day is served as kept and read again in the background (stale while
#: revalidating); past the bound, or never read, it is read now. So, however many people watch
#: the dashboard, each day is read at most once per TTL, a load while someone watches waits for
#: no day, and no number is older than its bound. The process reads every day the dashboard
#: may show when it starts (`warm`). (FerretDB decodes a day's document, with its hours, in
#: 20-50 ms on this machine: a 30-day dashboard read in full cost ~1 s, and today and yesterday
#: read on every load cost most of its time.)
LIVE_TTLS, CLOSED_TTLS = (2.0, 10.0), (600.0, 3600.0)
#: Days the dashboard may show (its `days` query's bound): what `warm` reads.
DASHBOARD_DAYS = 31
#: While someone has looked at the dashboard within this long (or the process started), the
#: days it read are read again as their TTL passes, without waiting for a load (`keep_warm`):
#: a load then never finds a day past its bound. After that, the first load reads them now.
WATCHED_S = 600.0


@dataclass(frozen=True)
class Candidate:
    """A log that matches, from the index."""

    at: int
    request_id: str
    path: str
    row: dict[str, Any]

    @property
    def position(self) -> Position:
        return (self.at, self.request_id)


class LogReader:
    """Pages of logs, and the dashboard's daily documents."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        *,
        max_buckets: int = 96,
        concurrency: int = 32,
        clock: Callable[[], float] = time.monotonic,
        indexed: bool | None = None,
    ):
        """`indexed`: read pages from the view documents by the server's indexes (MongoDB)
        instead of the hand-made log index (FerretDB); None: ask the server at the first page."""
        self._indexed = indexed
        self._db, self._max_buckets = db, max_buckets
        self._gate = asyncio.Semaphore(concurrency)
        self._kept: dict[str, tuple[float, Doc | None]] = {}  # daily id -> (read at, doc)
        self._refreshing: dict[str, asyncio.Task[None]] = {}  # path -> its background read
        self._watched: dict[str, tuple[float, str]] = {}  # path -> (last read, closed_before)
        self._clock = clock

    @property
    def db(self) -> AsyncDatabase[Doc]:
        """The database read."""
        return self._db

    async def page(
        self, flt: LogFilter, after: Position, limit: int
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """Up to `limit` view documents older than `after`, newest first, and the position of
        the next page (None: the end)."""
        if self._indexed is None:
            self._indexed = not await server_is_ferretdb(self._db)
        if self._indexed:
            return await self._page_indexed(flt, after, limit)
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
        return [{**c.row, "_id": c.request_id} for c in page], following

    async def _page_indexed(
        self, flt: LogFilter, after: Position, limit: int
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """A page read by the server's indexes: each path's newest `limit`, merged."""
        query = flt.view_query(after)

        async def newest(path: str) -> list[Doc]:
            async with self._gate:
                found = self._db[VIEW_OF[path]].find(query).sort(VIEW_ORDER).limit(limit)
                return await found.to_list(None)

        per_path: list[list[Doc]] = await self._all(newest(p) for p in flt.paths)
        rows = sorted(
            (d for docs in per_path for d in docs),
            key=lambda d: (d["at_ms"], d["_id"]),
            reverse=True,
        )
        page = rows[:limit]
        more = len(rows) > limit or any(len(docs) == limit for docs in per_path)
        last = page[-1] if more and page else None
        following = (int(str(last["at_ms"])), str(last["_id"])) if last is not None else None
        return page, following

    async def _walk(
        self, path: str, flt: LogFilter, after: Position, limit: int
    ) -> tuple[list[Candidate], Position | None]:
        """Matches on one path, walking slots back from `after`; and the position above which
        the walk saw everything (None: it saw everything)."""
        dim, value = flt.dimension()
        found: list[Candidate] = []
        chunk: list[str] = []
        read, rounds, last = 0, 0, ""
        async with aclosing(self._slots(path, dim, value, flt, after)) as slots:
            async for slot in slots:
                if read == self._max_buckets:
                    found.extend(await self._read((path, dim, value), chunk, flt, after))
                    return found, (slot_start_ms(last), "")
                chunk.append(slot)
                read, last = read + 1, slot
                if len(chunk) == PREFETCH[min(rounds, len(PREFETCH) - 1)]:
                    rounds += 1
                    found.extend(await self._read((path, dim, value), chunk, flt, after))
                    chunk = []
                    if len(found) >= limit:
                        return found, (slot_start_ms(last), "")
        found.extend(await self._read((path, dim, value), chunk, flt, after))
        return found, None

    async def _slots(
        self, path: str, dim: str, value: str, flt: LogFilter, after: Position
    ) -> AsyncGenerator[str]:
        """The slots with a bucket, newest first, from `after` back to `since`."""
        top = await self._one(LOG_INDEX, directory_id(path, dim, value)) or {}
        low_day = day_key(flt.since) if flt.since else ""
        low_slot = slot_key(dim, flt.since) if flt.since else ""
        days: dict[str, Any] = top.get("d") or {}  # type: ignore[assignment]
        wanted = [d for d in sorted(days, reverse=True) if low_day <= d]
        # a position (t, id) lists logs of t with a smaller id: the slot (or day) that starts
        # at t still holds some; a position (t, "") lists none of t
        above = after[0] + (1 if after[1] else 0)
        wanted = [d for d in wanted if slot_start_ms(d) < above]
        start, rounds = 0, 0
        while start < len(wanted):  # day directories, a few at once as with buckets
            ahead = wanted[start : start + PREFETCH[min(rounds, len(PREFETCH) - 1)]]
            start, rounds = start + len(ahead), rounds + 1
            listed = await self._all(
                self._one(LOG_INDEX, directory_id(path, dim, value, day)) for day in ahead
            )
            for doc in listed:
                slots: dict[str, Any] = (doc or {}).get("s") or {}
                for slot in sorted(slots, reverse=True):
                    if low_slot <= slot and slot_start_ms(slot) < above:
                        yield slot

    async def _read(
        self, where: tuple[str, str, str], slots: list[str], flt: LogFilter, after: Position
    ) -> list[Candidate]:
        path, dim, value = where
        buckets = await self._all(
            self._one(LOG_INDEX, bucket_id(path, dim, value, s)) for s in slots
        )
        return [c for bucket in buckets for c in _matches(bucket, path, flt, after)]

    async def daily(
        self, path: str, days: Iterable[str], *, closed_before: str = ""
    ) -> dict[str, Doc]:
        """The `view_requests_daily` documents of these days that exist. A day read once is
        served from memory, and read again in the background once older than its TTL
        (LIVE_TTLS from `closed_before`, a day key, on; CLOSED_TTLS before it); a day never
        read, or not read for longer than its bound, is read now."""
        now, keys = self._clock(), list(days)
        self._watched[path] = (now, closed_before)
        found: dict[str, Doc | None] = {}
        stale: list[str] = []
        for day in keys:
            kept = self._kept.get(daily_id(path, day))
            ttl, at_most = _ttls(day, closed_before)
            if kept is not None and now - kept[0] < at_most:
                found[day] = kept[1]
                if now - kept[0] >= ttl:
                    stale.append(day)
        if stale:
            self._refresh(path, stale)
        wanted = [d for d in keys if d not in found]
        for day, doc in (await self._days(path, wanted)).items():
            found[day] = doc
        return {d: doc for d in keys if (doc := found[d]) is not None}

    async def warm(self, now: datetime) -> None:
        """Read the days the dashboard may show, for both paths (at a process's start, so that
        no dashboard load waits for them)."""
        days = [day_key(now - timedelta(days=i)) for i in range(DASHBOARD_DAYS + 1)]
        closed = day_key(now - timedelta(days=1))
        for path in ("enqueue", "ondemand"):  # kept warm from the start
            self._watched[path] = (self._clock(), closed)
        try:
            for path in ("enqueue", "ondemand"):
                await self._days(path, days)
        except StoreUnavailable as e:  # the first dashboard load reads them then
            log.warning("dashboard days not read at start: %s", e)

    def renew(self) -> None:
        """Read again, in the background, the kept days past their TTL of each path someone
        looked at within WATCHED_S (run every second by `keep_warm`)."""
        now = self._clock()
        for path, (seen, closed_before) in self._watched.items():
            if now - seen >= WATCHED_S:
                continue
            prefix = f"{path}|"
            stale = []
            for key, (read_at, _) in self._kept.items():
                if key.startswith(prefix):
                    day = key[len(prefix) :]
                    ttl = _ttls(day, closed_before)[0]
                    if now - read_at >= ttl:
                        stale.append(day)
            if stale:
                self._refresh(path, stale)

    async def keep_warm(self, now: datetime, every_s: float = 1.0) -> None:
        """`warm`, then `renew` every `every_s`, until cancelled."""
        await self.warm(now)
        while True:
            await asyncio.sleep(every_s)
            try:
                self.renew()
            except Exception:  # a bug must not end the renewals
                log.exception("dashboard days not renewed")

    def close(self) -> None:
        """Stop the background reads (before the client closes)."""
        for task in self._refreshing.values():
            task.cancel()

    async def _days(self, path: str, days: list[str]) -> dict[str, Doc | None]:
        """Read these days now, and keep them."""
        now = self._clock()
        docs = await self._all(self._one(VIEW_DAILY, daily_id(path, d)) for d in days)
        for day, doc in zip(days, docs, strict=True):
            self._kept[daily_id(path, day)] = (now, doc)
        if len(self._kept) > 4 * 366:  # paths x days: never more than a few hundred
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < CLOSED_TTLS[1]}
        return dict(zip(days, docs, strict=True))

    def _refresh(self, path: str, days: list[str]) -> None:
        """Read stale days again in the background, one read per path at a time."""
        running = self._refreshing.get(path)
        if running is not None and not running.done():
            return
        self._refreshing[path] = asyncio.create_task(self._refresh_now(path, days))

    async def _refresh_now(self, path: str, days: list[str]) -> None:
        """One day at a time: thirty read at once kept FerretDB busy for a second, and the
        requests of that second waited behind them (a first paint's first byte took 1 s)."""
        try:
            for day in days:
                await self._days(path, [day])
        except StoreUnavailable as e:  # kept as they were; the next load asks again
            log.warning("dashboard days of %s not read again: %s", path, e)

    async def _one(self, collection: str, key: str) -> Doc | None:
        async with self._gate:
            found: Doc | None = await self._db[collection].find_one({"_id": key})
            return found

    async def _all(self, ops: Iterable[Awaitable[Any]]) -> list[Any]:
        with store_errors():
            return list(await asyncio.gather(*ops))


def _ttls(day: str, closed_before: str) -> tuple[float, float]:
    """A day's TTL and bound (see LIVE_TTLS): days before `closed_before` are closed."""
    return CLOSED_TTLS if day < closed_before else LIVE_TTLS


def _matches(bucket: Doc | None, path: str, flt: LogFilter, after: Position) -> Iterable[Candidate]:
    entries = (bucket or {}).get("entries") or {}
    assert isinstance(entries, dict)
    for rid, entry in entries.items():
        if not (isinstance(entry, list) and len(entry) > 4 and isinstance(entry[4], dict)):
            continue  # an entry without its row (written before rows were kept)
        if (entry[0], rid) < after and flt.accepts(entry):
            yield Candidate(int(entry[0]), rid, path, entry[4])
