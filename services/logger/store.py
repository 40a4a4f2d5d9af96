"""The logger's MongoDB adapter: claims (`logger_folds`), raw log reads, read-model writes, and
the real views on MongoDB.

Every read and write is keyed by `_id`, the only lookup FerretDB serves from an index. Claims go
in one `insert_many` per batch (fast on FerretDB) and are marked done once the fold is applied:
a duplicate `_id` whose claim is done means already folded; one not done is folded again (a
counter may then count twice after a crash, which beats losing the fact). Writes
go one document at a time, a few in flight, because FerretDB is pathologically slow with many
updates in one `bulk_write`; the fold merges a batch's effects so that each document is written
once per batch. A rebuild (`rebuild.py`) drops the read models and reads the raw logs in
batches; its new documents go in bulk (`apply(fresh=True)`, `mark_folded`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure

from runtime.doclocks import DocLocks
from runtime.mongo import Doc, create_indexes, store_errors
from schemas.base import utcnow
from schemas.collections import (
    ENQUEUE_LOGS,
    FOLDS,
    LIVE_ENQUEUE,
    LIVE_ONDEMAND,
    LOG_INDEX,
    ONDEMAND_LOGS,
    VIEW_DAILY,
    VIEW_ENQUEUE,
    VIEW_HOURLY,
    VIEW_ONDEMAND,
    VIEW_USAGE,
)
from schemas.views import RAW_OF, VIEW_OF
from services.logger.errors import StoreRefused, StoreUnavailable
from services.logger.fold import Update, Writes

log = logging.getLogger(__name__)
#: Every collection the fold writes: derived from the raw logs, so a rebuild may drop them.
READ_MODELS = (VIEW_ENQUEUE, VIEW_ONDEMAND, VIEW_HOURLY, VIEW_DAILY, VIEW_USAGE, LOG_INDEX, FOLDS)

#: Real views registered where the server has `createView` (MongoDB): the raw logs, projected.
LIVE_VIEWS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    LIVE_ENQUEUE: (
        ENQUEUE_LOGS,
        [
            {"$project": {"input": 0, "outbox": 0}},
            {"$addFields": {"request_id": "$_id", "target": "$task_id"}},
        ],
    ),
    LIVE_ONDEMAND: (
        ONDEMAND_LOGS,
        [
            {"$project": {"replica_url": 0, "input": 0}},
            {"$addFields": {"request_id": "$_id", "accepted_at": "$created_at"}},
        ],
    ),
}


def is_mongodb(build_info: dict[str, Any]) -> bool:
    """True for MongoDB itself; FerretDB answers `buildInfo` with a `ferretdbVersion`."""
    return "ferretdbVersion" not in build_info and "ferretdb" not in str(build_info).lower()


class ViewStore:
    """Claims facts, reads raw logs, writes read models."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        concurrency: int = 8,
        locks: DocLocks | None = None,
        *,
        buckets: bool = True,
    ) -> None:
        """`locks`: on FerretDB, where two logger copies updating one read-model document at
        once can lose an update (a count, an index entry), each update holds its document's
        lock (runtime/doclocks.py). `buckets`: keep the hand-made log index (FerretDB/SQLite,
        which has no index but `_id` to answer a page from); False where the server's own
        indexes on the view documents do (`create_view_indexes`)."""
        self._db, self._folds = db, db[FOLDS]
        self._gate = asyncio.Semaphore(concurrency)
        self._locks = locks or DocLocks(db, on=False)
        self.buckets = buckets
        #: directory fields of the log index this process has written: a directory gains a
        #: day or a slot a few times an hour, and most of its updates would write what is there
        self._dirs: set[tuple[str, str, Any]] = set()

    async def create_view_indexes(self) -> None:
        """The indexes the log pages read the view documents by (schemas/collections.py)."""
        with store_errors():
            for name in VIEW_OF.values():
                await create_indexes(self._db, name)

    async def claim(self, keys: Sequence[str]) -> set[str]:
        """Claim each key (`done: False`); the keys to fold now: the new ones, and those claimed
        before whose fold never finished (a crash between claim and apply, or a lost reply to
        the claim itself). A key whose fold is done is a redelivery."""
        if not keys:
            return set()
        now = utcnow()
        docs = [{"_id": k, "at": now, "done": False} for k in keys]
        try:
            with store_errors():
                await self._folds.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise StoreRefused(f"claim failed: {errors[:1]}") from exc
            taken = [keys[e["index"]] for e in errors]
            unfinished = await self._unfinished(taken)
            return (set(keys) - set(taken)) | unfinished
        return set(keys)

    async def _unfinished(self, keys: Sequence[str]) -> set[str]:
        """Of keys claimed before, those whose fold was not marked done (rare: redeliveries)."""

        async def one(key: str) -> str | None:
            async with self._gate:
                doc = await self._folds.find_one({"_id": key})
            return key if doc is not None and doc.get("done") is False else None

        with store_errors():
            found = await asyncio.gather(*(one(k) for k in keys))
        return {k for k in found if k is not None}

    async def mark_done(self, keys: Iterable[str]) -> None:
        """The folds of `keys` are applied: a later delivery is a redelivery. One update each:
        FerretDB 1.24 on SQLite did not finish one `update` command of 200 statements by `_id`
        in 60 s (a `bulk_write`), where 200 single updates take about a second."""

        async def one(key: str) -> None:
            async with self._gate:
                await self._folds.update_one({"_id": key}, {"$set": {"done": True}})

        with store_errors():
            await asyncio.gather(*(one(k) for k in keys))

    async def insert_raw(self, docs: Sequence[Doc]) -> dict[str, Doc]:
        """Store on-demand raw logs (`ondemand_logs`), each once: of two with one request id
        (here, or one stored before) the first stays. The documents stored now, by request id
        (the others were there already: the one kept must be read)."""
        first: dict[str, Doc] = {}
        for doc in docs:
            first.setdefault(str(doc["_id"]), doc)
        if not first:
            return {}
        order = list(first)
        try:
            with store_errors():
                await self._db[ONDEMAND_LOGS].insert_many(list(first.values()), ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise StoreRefused(f"raw log insert failed: {errors[:1]}") from exc
            for e in errors:
                first.pop(order[e["index"]], None)
        return first

    async def raw(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Doc]:
        """The raw log documents of (path, request id) pairs that exist."""
        pairs = sorted(set(wanted))
        found = await self._all(self._db[RAW_OF[p]].find_one({"_id": rid}) for p, rid in pairs)
        return {pair: doc for pair, doc in zip(pairs, found, strict=True) if doc is not None}

    async def apply(self, writes: Writes, *, fresh: bool = False) -> None:
        """Every write, one document each, a few at a time. `fresh`: every replaced document is
        new (a rebuild into emptied collections), so they go in one `insert_many` per
        collection instead, first."""
        ops: list[Awaitable[Any]] = []
        if fresh:
            await self._insert_all(writes.replaces)
        else:
            ops += [
                self._db[coll].replace_one({"_id": key}, doc, upsert=True)
                for (coll, key), doc in writes.replaces.items()
            ]
        written: set[tuple[str, str, Any]] = set()
        counts: list[Awaitable[Any]] = []
        for (coll, key), update in writes.updates.items():
            if coll == LOG_INDEX and key.startswith("dir|") and not update.incs:
                fields = {(key, name, value) for name, value in update.sets.items()}
                if fields <= self._dirs and not update.unsets:
                    continue  # this process wrote all of it before
                written |= fields
            (counts if update.incs else ops).append(self._update(coll, key, update))
        await self._all(ops)
        if len(self._dirs) > 100_000:
            self._dirs.clear()
        self._dirs |= written
        # The counts last, once everything else is written: writing a document again is
        # harmless, adding to a count is not, so a copy killed before its "done" marks (whose
        # facts the next owner folds again) has the fewest counts behind it.
        await self._all(counts)

    async def _update(self, collection: str, key: str, update: Update) -> None:
        async with self._locks.held(collection, key):
            await self._db[collection].update_one({"_id": key}, update.spec(), upsert=update.upsert)

    async def _insert_all(self, docs: dict[tuple[str, str], dict[str, Any]]) -> None:
        by_collection: dict[str, list[dict[str, Any]]] = {}
        for (coll, _), doc in docs.items():
            by_collection.setdefault(coll, []).append(doc)
        with store_errors():
            for coll, some in by_collection.items():
                await self._db[coll].insert_many(some, ordered=False)

    async def mark_folded(self, keys: Sequence[str]) -> None:
        """Record `keys` as folded and done, in one `insert_many` (a rebuild: `logger_folds`
        was emptied first, so none is there)."""
        if keys:
            now = utcnow()
            await self._insert_all({(FOLDS, k): {"_id": k, "at": now, "done": True} for k in keys})

    async def drop_read_models(self) -> list[str]:
        """Drop every collection the fold writes (`READ_MODELS`); the raw logs stay. The
        collections that existed."""
        with store_errors():
            existing = set(await self._db.list_collection_names())
            for name in READ_MODELS:
                await self._db.drop_collection(name)
        return [n for n in READ_MODELS if n in existing]

    async def raw_count(self, path: str) -> int:
        """About how many raw logs a path has (the server's estimate: for progress only)."""
        with store_errors():
            return await self._db[RAW_OF[path]].estimated_document_count()

    async def raw_batches(self, path: str, size: int) -> AsyncIterator[list[Doc]]:
        """Every raw log of a path, in batches of `size`, in the collection's natural order (the
        order of writing, so a batch's logs share most of their buckets)."""
        batch: list[Doc] = []
        with store_errors():
            async for doc in self._db[RAW_OF[path]].find({}, batch_size=size):
                batch.append(doc)
                if len(batch) == size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def _all(self, ops: Iterable[Awaitable[Any]]) -> list[Any]:
        async def one(op: Awaitable[Any]) -> Any:
            async with self._gate:
                with store_errors():
                    return await op

        results = await asyncio.gather(*(one(op) for op in ops), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for bug in (r for r in failed if not isinstance(r, StoreUnavailable)):
            raise bug
        if failed:
            raise StoreUnavailable(
                f"{len(failed)} of {len(results)} operations failed: {failed[0]}"
            )
        return results

    async def register_views(self) -> list[str]:
        """On MongoDB, create the live views that do not exist yet; on FerretDB (no
        `createView`), nothing. The views created."""
        try:
            with store_errors():
                info = await self._db.client.admin.command("buildInfo")
                if not is_mongodb(info):
                    return []
                existing = set(await self._db.list_collection_names())
                created = []
                for name, (source, pipeline) in LIVE_VIEWS.items():
                    if name not in existing:
                        await self._db.create_collection(name, viewOn=source, pipeline=pipeline)
                        created.append(name)
        except OperationFailure as exc:  # e.g. no privilege: the read models still work
            log.warning("could not register the live views: %s", exc)
            return []
        return created
