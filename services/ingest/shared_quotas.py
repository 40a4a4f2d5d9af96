"""Quotas that hold across every ingest copy: counters in MongoDB.

- **Rate:** a sliding window counted in `BUCKETS` time buckets (one document per user, path and
  bucket, `$inc`-ed atomically). The count of "the last `window_s` seconds" is the sum of the
  buckets inside the window plus the oldest bucket weighted by the part of it still inside (the
  sliding-window counter; its error is at most one bucket's share, `window_s / BUCKETS`).
  Buckets that have closed are read once and kept; a copy leases requests from the current
  bucket in batches (`lease_size`), so a busy user's requests rarely wait for MongoDB.
- **Concurrent tasks:** seats. A user with limit L has L seats (`task_slots`, `_id`
  `s|<k>|<user>`); a request takes one with a unique `_id` insert (atomic on every backend, so
  at most L pass across any number of copies), after its marker (`r|<request id>`, in the same
  ordered insert) that makes a retry under the same id hold one seat. A few seats are tried at
  random, so taking one costs one round trip by `_id` whatever the number of seats held; only
  when those are taken are the user's seats read, the ones whose request has ended (or that are
  older than `task_slot_max_age_s`) freed, and a free one taken, or the request refused.

If MongoDB does not answer within `quota_store_timeout_s`, the process falls back to its own
counts (`quotas.py`) and logs it: a paused database slows no caller, and quotas then hold per copy.
That bound covers a call whole (its wait for a lock, of this process or across copies, and every
round trip), and after a call that missed it the next calls fall back at once for
`STORE_RETRY_S` (`Breaker`): requests queued behind one another while MongoDB is away would
otherwise each wait the bound in turn (found by the FerretDB fault test: every request made
during a 10 s stop waited for the database to come back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from runtime.doclocks import DocLocks
from runtime.mongo import Doc, StoreUnavailable, create_indexes, store_errors
from schemas.collections import QUOTA_COUNTERS as RATES
from schemas.collections import TASK_SLOTS as SLOTS
from schemas.status import ENDED
from services.ingest.quotas import Lookup

log = logging.getLogger(__name__)

BUCKETS = 10
#: Leases below the limit from which a request does not wait for the next lease (see SharedWindow).
FAR = 8

#: After a quota call found the store away (or too slow), calls fail at once for this long.
STORE_RETRY_S = 1.0

T = TypeVar("T")


class StoreDown(Exception):
    """The counters could not be reached in time: the caller falls back to its own counts."""


@dataclass
class Breaker:
    """Bounds each store call by `timeout_s`; once one missed it (or the store was away), calls
    fail at once for `open_s`, then the next one tries the store again."""

    timeout_s: float
    open_s: float = STORE_RETRY_S
    clock: Callable[[], float] = time.monotonic
    _until: float = 0.0

    @contextlib.asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """The block runs under the bound; StoreDown when open, late or refused by the store."""
        if self.clock() < self._until:
            raise StoreDown("the store did not answer in time just now")
        try:
            with store_errors():
                async with asyncio.timeout(self.timeout_s):
                    yield
        except (TimeoutError, StoreUnavailable) as e:
            self._until = self.clock() + self.open_s
            raise StoreDown(str(e) or f"no answer in {self.timeout_s:g} s") from e

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One store call under the bound (made only when the breaker is closed)."""
        async with self.bounded():
            return await call()


class Counters(Protocol):
    """Where bucket counts live (MongoDB; a dict in unit tests)."""

    async def add(self, key: str, n: int) -> int: ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, int]: ...


def bucket_key(path: str, bucket_s: float, bucket: int, user: str) -> str:
    """The user goes last: any character in a user name keeps the key unambiguous."""
    return f"{path}|{bucket_s:g}|{bucket}|{user}"


def lease_size(limit: int) -> int:
    """Requests a copy takes from the shared count at once: 1 (exact) for small limits; for large
    ones a 40th of the limit, at most 100, so a busy user costs a round trip per that many."""
    return max(1, min(100, limit // 40))


@dataclass
class _Lease:
    """What this copy holds of one user's count in one bucket."""

    bucket: int
    left: int = 0
    denied_until: float = 0.0  # refusals are answered from memory until then
    retry_at: float = 0.0  # when the last refused request would have fit
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: at the last lease, the user was so far below the limit that requests need not wait
    #: for the next one: they are let through and counted with it (`debt`)
    far: bool = False
    debt: int = 0
    prefetching: bool = False  # a background lease is on its way


@dataclass
class SharedWindow:
    """At most `limit` requests per user and path in any `window_s`, across processes.

    A copy leases `lease_size(limit)` requests of the current bucket at once (`$inc` by that
    many), hands them out locally, leases the next batch in the background when half is gone,
    and gives back what is unused when the bucket ends. A refusal is remembered until the
    request would fit (at most one bucket), so a caller over its quota costs no round trips.
    A user who was at least `FAR` leases below the limit at the last lease does not wait for the
    next one when the lease runs out: the requests go through and are added with it, so a slow
    store slows no caller who is nowhere near a quota; near the limit, every request waits for
    the exact count.
    """

    counters: Counters
    window_s: float
    clock: Callable[[], float] = time.time
    #: closed buckets are final: read once, kept (bounded: reset when it grows large)
    _closed: dict[str, int] = field(default_factory=dict)
    _leases: dict[tuple[str, str], _Lease] = field(default_factory=dict)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def bucket_s(self) -> float:
        return self.window_s / BUCKETS

    async def take(self, user: str, path: str, limit: int) -> float | None:
        """Count one request; None when allowed, else seconds until one would be."""
        now = self.clock()
        lease = self._lease(user, path, math.floor(now / self.bucket_s))
        if now < lease.denied_until:
            return max(lease.retry_at - now, 0.0)
        size = lease_size(limit)
        while lease.left == 0:
            # the next lease is on its way, and what goes through meanwhile stays far below
            coming = lease.lock.locked() or lease.prefetching
            if lease.far and coming and lease.debt < FAR * size // 2:
                lease.debt += 1
                return None
            async with lease.lock:
                if lease.left == 0:
                    wait = await self._acquire(lease, user, path, limit, size)
                    if wait is not None:
                        return wait
        lease.left -= 1
        if size > 1 and lease.left < size // 2 and not (lease.lock.locked() or lease.prefetching):
            lease.prefetching = True
            self._spawn(self._prefetch(lease, user, path, limit, size))
        return None

    def _lease(self, user: str, path: str, current: int) -> _Lease:
        lease = self._leases.get((user, path))
        if lease is None or lease.bucket != current:
            if lease is not None and lease.left != lease.debt:  # the bucket ended: settle it
                key = bucket_key(path, self.bucket_s, lease.bucket, user)
                self._spawn(self._give_back(key, lease.left - lease.debt))
            if len(self._leases) > 100_000:
                self._leases.clear()
            lease = self._leases[(user, path)] = _Lease(current)
        return lease

    async def _acquire(
        self, lease: _Lease, user: str, path: str, limit: int, size: int
    ) -> float | None:
        """Lease up to `size` more; None when some were granted, else the seconds to wait.

        Near a bucket's edge, a copy counts into one bucket while another already counts into
        the next. Each writes first and then reads its neighbour (the previous bucket early in
        one, the next bucket late in one), so of two racing requests at least one sees the
        other: the limit holds across the edge (found by two ingests under one burst).
        """
        key = bucket_key(path, self.bucket_s, lease.bucket, user)
        debt, lease.debt = lease.debt, 0
        try:
            total = await self.counters.add(key, size + debt)
        except BaseException:
            lease.debt += debt
            raise
        now = self.clock()
        into = now - lease.bucket * self.bucket_s  # seconds into the bucket
        settle = min(1.0, self.bucket_s / 2)
        older = await self._closed_counts(user, path, lease.bucket, fresh_last=into < settle)
        later = 0
        if into > self.bucket_s - settle:
            nxt = bucket_key(path, self.bucket_s, lease.bucket + 1, user)
            later = (await self.counters.get_many([nxt])).get(nxt, 0)
        fraction = min(1.0, max(0.0, into / self.bucket_s))
        before = self._estimate(older, total - size + later, fraction)
        granted = max(0, min(size, math.floor(limit - before)))
        if granted < size:  # what does not fit goes back at once
            await self.counters.add(key, granted - size)
        lease.left += granted
        lease.far = limit - before - granted >= FAR * size
        if granted:
            return None
        wait = self._wait(older, total - size, fraction, limit)
        lease.denied_until = now + min(wait, self.bucket_s)
        lease.retry_at = now + wait
        return wait

    async def _prefetch(self, lease: _Lease, user: str, path: str, limit: int, size: int) -> None:
        try:
            async with lease.lock:
                current = lease.bucket == math.floor(self.clock() / self.bucket_s)
                if lease.left < size // 2 and current:
                    with contextlib.suppress(StoreDown):
                        await self._acquire(lease, user, path, limit, size)
        finally:
            lease.prefetching = False

    async def _give_back(self, key: str, n: int) -> None:
        with contextlib.suppress(StoreDown):
            await self.counters.add(key, -n)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _closed_counts(
        self, user: str, path: str, current: int, *, fresh_last: bool = False
    ) -> list[int]:
        """Counts of the BUCKETS buckets before the current one, oldest first. The one just
        closed is read again (and not kept) while `fresh_last`: late writes may still land."""
        keys = [bucket_key(path, self.bucket_s, b, user) for b in range(current - BUCKETS, current)]
        missing = [k for k in keys if k not in self._closed]
        if fresh_last:
            self._closed.pop(keys[-1], None)
            missing = [k for k in keys if k not in self._closed]
        if missing:
            if len(self._closed) > 200_000:
                self._closed.clear()
            found = await self.counters.get_many(missing)
            self._closed.update({k: found.get(k, 0) for k in missing})
        counts = [self._closed[k] for k in keys]
        if fresh_last:
            self._closed.pop(keys[-1], None)
        return counts

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
    """Bucket counts in `quota_counters`; every call bounded by `timeout_s` as a whole (through
    `Breaker`, waits for locks included).

    One add per bucket at a time: within a copy by an asyncio lock, across copies by `locks`
    (on FerretDB, whose 1.x updates are not atomic across connections on SQLite, issue #3040:
    two `$inc` of one bucket at once can lose one and let a request past its quota; MongoDB's
    `$inc` is atomic, and the locks are off there).
    """

    db: AsyncDatabase[Doc]
    timeout_s: float
    locks: DocLocks | None = None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    breaker: Breaker = field(init=False)

    def __post_init__(self) -> None:
        self.breaker = Breaker(self.timeout_s)

    async def add(self, key: str, n: int) -> int:
        lock = self._locks.setdefault(key, asyncio.Lock())
        across = self.locks or DocLocks(self.db, on=False)
        try:
            async with self.breaker.bounded(), lock, across.held(RATES, key):
                try:
                    return await self._add(key, n)
                except DuplicateKeyError:  # two first upserts of one bucket: the loser retries
                    return await self._add(key, n)
        finally:
            if not lock.locked() and len(self._locks) > 10_000:
                self._locks.clear()

    async def _add(self, key: str, n: int) -> int:
        doc = await self.db[RATES].find_one_and_update(
            {"_id": key},
            {"$inc": {"n": n}, "$setOnInsert": {"at": datetime.now(UTC)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return _count(doc["n"]) if doc else n

    async def get_many(self, keys: Sequence[str]) -> dict[str, int]:
        async def read() -> dict[str, int]:
            cursor = self.db[RATES].find({"_id": {"$in": list(keys)}}, {"n": 1})
            return {str(d["_id"]): _count(d["n"]) async for d in cursor}

        return await self.breaker.call(read)

    async def forget_before(self, cutoff: datetime) -> None:
        """Drop buckets older than `cutoff` (FerretDB 1.x has no TTL index)."""
        await self.breaker.call(lambda: self.db[RATES].delete_many({"at": {"$lt": cutoff}}))


#: Seats tried at random before a user's seats are read (the scan, only near the limit).
SEAT_TRIES = 3
#: Up to this limit, the free seats after a scan are listed and tried in turn; above it, drawn.
LISTED_SEATS = 10_000


def seat_id(user: str, k: int) -> str:
    """Seat `k` of `user`. The user goes last (any character in a name keeps it unambiguous),
    and the prefix keeps seats apart from request markers."""
    return f"s|{k}|{user}"


def marker_id(request_id: str) -> str:
    """The marker of a request holding a seat: a retry under its id finds it by `_id`."""
    return f"r|{request_id}"


class Slots(Protocol):
    """Where seats and markers live (MongoDB `task_slots`; a dict in unit tests). Every call is
    by `_id` but `of_user`, the one scan, made only when a user's seats look taken."""

    async def insert(self, docs: Sequence[Doc]) -> int:
        """Insert `docs` in order, stopping at the first whose `_id` is taken: how many went in."""
        ...

    async def of_user(self, user: str | None) -> list[Doc]:
        """Every seat and marker of `user` (None: of every user, for the periodic sweep)."""
        ...

    async def get(self, _id: str) -> Doc | None: ...

    async def delete(self, _id: str, request: str | None = None) -> bool:
        """Delete `_id` (only while it holds `request`, when given); True when this call did."""
        ...

    async def set_seat(self, marker: str, seat: str) -> None: ...


@dataclass
class SharedTasks:
    """Enqueue requests per user that may still be queued or running, across processes.

    A user with limit L has L possible seats (`seat_id(user, k)`, k in [0, L)); a request takes
    one by inserting it, and a unique `_id` insert is atomic on every backend, so two requests
    never hold one seat and at most L pass, whatever the number of copies. The request's marker
    (`marker_id`, naming its seat) goes in first, in the same ordered insert: a retry under the
    same request id finds it and holds no second seat. A few seats are tried at random; only
    when all are taken are the user's documents read, the seats of ended (or too old) requests
    freed, and a free one taken, or the request refused.
    """

    slots: Slots
    lookup: Lookup
    max_age_s: float
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)

    async def reserve(self, user: str, request_id: str, limit: int) -> bool:
        """Take a seat for `request_id`; False (and no seat) when `user` is at the limit."""
        if limit <= 0:
            return False
        now = self.clock()
        tries = self.rng.sample(range(limit), min(SEAT_TRIES, limit))
        first = seat_id(user, tries[0])
        marker = {"_id": marker_id(request_id), "user": user, "request": request_id, "at": now}
        went_in = await self.slots.insert([{**marker, "seat": first}, self._seat(first, marker)])
        if went_in != 1:  # 2: seated; 0: the same request again, which holds its seat already
            return True
        for k in tries[1:]:
            if await self._take(seat_id(user, k), marker):
                return True
        held = await self._sweep(user, now)
        for k in self._free(limit, held):
            if await self._take(seat_id(user, k), marker):
                return True
        await self.slots.delete(marker_id(request_id))
        return False

    async def release(self, request_id: str) -> None:
        """The request never got in: free its seat (by `_id`)."""
        found = await self.slots.get(marker_id(request_id))
        if found is None:
            return
        # Whoever deletes the marker frees the seat: a sweep at the same time frees it only once.
        if await self.slots.delete(marker_id(request_id)) and found.get("seat"):
            await self.slots.delete(str(found["seat"]), request_id)

    @staticmethod
    def _seat(seat: str, marker: Doc) -> Doc:
        return {
            "_id": seat,
            "user": marker["user"],
            "request": marker["request"],
            "at": marker["at"],
        }

    async def _take(self, seat: str, marker: Doc) -> bool:
        if not await self.slots.insert([self._seat(seat, marker)]):
            return False
        await self.slots.set_seat(str(marker["_id"]), seat)
        return True

    def _free(self, limit: int, held: set[int]) -> Iterable[int]:
        """Seats not held by a request still running, in random order."""
        if limit <= LISTED_SEATS:
            free = [k for k in range(limit) if k not in held]
            self.rng.shuffle(free)
            yield from free
            return
        if len(held) >= limit:
            return
        for _ in range(4 * SEAT_TRIES):
            k = self.rng.randrange(limit)
            if k not in held:
                yield k

    async def sweep(self) -> None:
        """Free the seats of every user's ended (or too old) requests. Run every minute by each
        copy: a user who never reaches the limit never sweeps, and the seats and markers of
        their ended requests would stay for `max_age_s`."""
        await self._sweep(None, self.clock())

    async def _sweep(self, user: str | None, now: datetime) -> set[int]:
        """Free the seats of ended (or too old) requests; the seats still held. Whoever deletes
        a request's marker frees its seat, so two sweeps free a seat once; a seat left without
        a marker (a copy died between the two deletes) is freed only while it holds the same
        request, so a seat taken again in between is kept."""
        docs = await self.slots.of_user(user)
        seats = {str(d["_id"]): d for d in docs if str(d["_id"]).startswith("s|")}
        markers = {str(d["request"]): d for d in docs if str(d["_id"]).startswith("r|")}
        too_old = now - timedelta(seconds=self.max_age_s)
        started = {str(d["request"]): _aware(_when(d["at"])) for d in docs}
        requests = sorted(started)
        statuses = await asyncio.gather(*(self.lookup(rid) for rid in requests))
        ended = {
            rid
            for rid, status in zip(requests, statuses, strict=True)
            if status in ENDED or started[rid] < too_old
        }
        seated = {str(d["request"]) for d in seats.values()}

        async def free(seat: str, rid: str) -> None:
            if rid not in markers or await self.slots.delete(marker_id(rid)):
                await self.slots.delete(seat, rid)

        await asyncio.gather(
            *(free(sid, str(d["request"])) for sid, d in seats.items() if d["request"] in ended),
            *(self.slots.delete(marker_id(r)) for r in markers if r in ended and r not in seated),
        )
        return {int(sid.split("|", 2)[1]) for sid, d in seats.items() if d["request"] not in ended}


@dataclass
class MongoSlots:
    """Seats and markers in `task_slots`; every call bounded by `timeout_s` (through `Breaker`).

    Inserts are grouped: while one is in flight, those that arrive wait and then go together in
    one unordered `insert_many` (at most `batch` documents), so under load a seat costs a share
    of a round trip; alone, a request waits for nobody, and no request waits past `timeout_s` in
    all (one that waited that long without being sent is not sent). Each request's documents
    are still inserted in order, as `Slots.insert` promises: one that went in after one of its
    own was refused is deleted again (a retry's marker refused but its seat taken)."""

    db: AsyncDatabase[Doc]
    timeout_s: float
    batch: int = 512
    _waiting: list[tuple[list[Doc], asyncio.Future[set[int]]]] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None
    breaker: Breaker = field(init=False)

    def __post_init__(self) -> None:
        self.breaker = Breaker(self.timeout_s)

    async def insert(self, docs: Sequence[Doc]) -> int:
        done: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: f.cancelled() or f.exception())  # told even if unawaited
        entry = (list(docs), done)
        self._waiting.append(entry)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        try:  # `timeout_s` bounds the wait for the insert in flight and this one together
            refused = await asyncio.wait_for(asyncio.shield(done), self.timeout_s)
        except TimeoutError as e:
            self._waiting = [w for w in self._waiting if w is not entry]  # if not sent: never
            raise StoreDown(f"no answer in {self.timeout_s:g} s") from e
        went_in = next((i for i in range(len(docs)) if i in refused), len(docs))
        for i, doc in enumerate(docs):
            if i > went_in and i not in refused:  # in after one of its own was refused: undo
                request = doc.get("request")
                await self.delete(str(doc["_id"]), None if request is None else str(request))
        return went_in

    async def _flush_all(self) -> None:
        while self._waiting:
            group: list[tuple[list[Doc], asyncio.Future[set[int]]]] = []
            size = 0
            while self._waiting and (not group or size + len(self._waiting[0][0]) <= self.batch):
                group.append(self._waiting.pop(0))
                size += len(group[-1][0])
            try:
                refused = await self._insert_many([d for docs, _ in group for d in docs])
            except Exception as e:  # every waiter gets the error as its own
                for _, done in group:
                    if not done.done():
                        done.set_exception(e)
                continue
            start = 0
            for docs, done in group:
                mine = {i - start for i in refused if start <= i < start + len(docs)}
                start += len(docs)
                if not done.done():
                    done.set_result(mine)

    async def _insert_many(self, docs: list[Doc]) -> set[int]:
        """The indexes of `docs` whose `_id` was taken."""
        try:
            await self._bounded(lambda: self.db[SLOTS].insert_many(docs, ordered=False))
        except BulkWriteError as e:
            errors = e.details.get("writeErrors", [])
            if not errors or any(err.get("code") != 11000 for err in errors):
                raise
            return {int(err["index"]) for err in errors}
        return set()

    async def of_user(self, user: str | None) -> list[Doc]:
        query = {} if user is None else {"user": user}
        found: list[Doc] = await self._bounded(lambda: self.db[SLOTS].find(query).to_list(None))
        return found

    async def get(self, _id: str) -> Doc | None:
        found: Doc | None = await self._bounded(lambda: self.db[SLOTS].find_one({"_id": _id}))
        return found

    async def delete(self, _id: str, request: str | None = None) -> bool:
        query: Doc = {"_id": _id} if request is None else {"_id": _id, "request": request}
        done = await self._bounded(lambda: self.db[SLOTS].delete_one(query))
        return done.deleted_count == 1

    async def set_seat(self, marker: str, seat: str) -> None:
        await self._bounded(
            lambda: self.db[SLOTS].update_one({"_id": marker}, {"$set": {"seat": seat}})
        )

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self.breaker.call(call)


def _count(value: object) -> int:
    return value if isinstance(value, int) else int(str(value))


def _when(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    return value


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """`task_slots` are counted per user; old rate buckets are dropped by time."""
    await create_indexes(db, SLOTS)
    await create_indexes(db, RATES)
