"""The router's MongoDB adapter: reads `serving_machines` and `endpoint_mappings` (written by the
ingest admin API), writes `ondemand_logs` (one document per request, `_id` = request id).

Single lookups are by `_id`, the only index FerretDB answers from; the periodic reload reads the
two (small) mapping collections whole. Log inserts are spooled and written in the background,
many per `insert_many` (see OnDemandLogStore); a duplicate `_id` means an earlier delivery
already logged it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from runtime.mongo import Doc, StoreRefused, store_errors
from schemas.base import Envelope
from schemas.collections import ENDPOINT_MAPPINGS, ONDEMAND_LOGS, SERVING_MACHINES
from schemas.inference import InferenceRequested
from services.inference_router.errors import StoreUnavailable
from services.inference_router.outcomes import Outcome

DEFAULT_TIMEOUT_S = 30.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Machine:
    """A serving machine: its replicas' base URLs and the real ClearML id (admin-only)."""

    machine_id: str
    serving_task_id: str | None
    base_urls: tuple[str, ...]


@dataclass(frozen=True)
class Mapping:
    """An endpoint mapped on a machine, with its call timeout."""

    machine_id: str
    endpoint: str
    timeout_s: float


def mapping_key(machine_id: str, endpoint: str) -> str:
    """`_id` of an endpoint mapping."""
    return f"{machine_id}/{endpoint}"


def _machine(doc: dict[str, Any]) -> Machine:
    urls = tuple(str(u) for u in doc.get("base_urls") or ())
    task = doc.get("serving_task_id")
    return Machine(str(doc["_id"]), str(task) if task else None, urls)


def _mapping(doc: dict[str, Any]) -> Mapping:
    machine_id, _, endpoint = str(doc["_id"]).partition("/")
    timeout = doc.get("timeout_s")
    return Mapping(
        str(doc.get("machine_id") or machine_id),
        str(doc.get("endpoint") or endpoint),
        float(timeout) if timeout else DEFAULT_TIMEOUT_S,
    )


class MappingStore:
    """Reads machines and endpoint mappings."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._machines, self._mappings = db[SERVING_MACHINES], db[ENDPOINT_MAPPINGS]

    async def all_machines(self) -> dict[str, Machine]:
        """Every machine, by id."""
        docs = await _call(self._machines.find({}).to_list(None))
        return {m.machine_id: m for m in map(_machine, docs)}

    async def all_mappings(self) -> dict[str, Mapping]:
        """Every mapping, by `_id`."""
        docs = await _call(self._mappings.find({}).to_list(None))
        return {mapping_key(m.machine_id, m.endpoint): m for m in map(_mapping, docs)}

    async def machine(self, machine_id: str) -> Machine | None:
        """One machine by `_id`."""
        doc = await _call(self._machines.find_one({"_id": machine_id}))
        return _machine(doc) if doc else None

    async def mapping(self, machine_id: str, endpoint: str) -> Mapping | None:
        """One mapping by `_id`."""
        doc = await _call(self._mappings.find_one({"_id": mapping_key(machine_id, endpoint)}))
        return _mapping(doc) if doc else None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def log_doc(env: Envelope[InferenceRequested], outcome: Outcome) -> dict[str, Any]:
    """The `ondemand_logs` document of one request."""
    p, reply = env.payload, outcome.reply
    bus = (outcome.consumed_at - env.created_at).total_seconds() * 1000
    total = (outcome.finished_at - env.created_at).total_seconds() * 1000
    return {
        "_id": env.id,
        "user": env.user,
        "machine_id": p.machine_id,
        "endpoint": p.endpoint,
        "version": p.version,
        "serving_task_id": outcome.serving_task_id,
        "replica_url": outcome.replica_url,
        "status": outcome.status,
        "http_status": reply.http_status,
        "error_code": reply.error_code,
        "error": reply.message if not reply.ok else None,
        "latency_ms": {"bus": _ms(max(bus, 0.0)), "model": reply.model_ms, "total": _ms(total)},
        "created_at": env.created_at,
        "finished_at": outcome.finished_at,
    }


class OnDemandLogStore:
    """Writes request logs off the caller's path, through a bounded in-memory spool.

    `record` never waits for MongoDB: it puts the document in the spool and returns. One
    background writer empties the spool in order, many documents per `insert_many`; while the
    store is away (StoreUnavailable) it keeps the documents, in order, and tries again with a
    growing pause (up to `retry_cap_s`), so the router's replies go on meanwhile. A document the
    store refuses (not as a duplicate) is tried `refused_attempts` times, then dropped and
    counted. When the spool holds `capacity` documents, a new one is dropped and counted: the
    call's outcome is also published as RequestLogged (the `logs` topic), which the logger folds
    into its read models whatever happens here. `close` gives the writer `close_timeout_s` to
    empty the spool; what a process that dies (or a store still away at close) leaves in it is
    lost from `ondemand_logs` (it is only in memory), not from the `logs` topic.
    """

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        linger_s: float = 0.0,
        *,
        capacity: int = 20_000,
        max_batch: int = 500,
        retry_cap_s: float = 2.0,
        refused_attempts: int = 3,
    ) -> None:
        self._logs = db[ONDEMAND_LOGS]
        self._linger, self._capacity, self._max = linger_s, capacity, max_batch
        self._retry_cap, self._refused_attempts = retry_cap_s, refused_attempts
        self._spool: deque[tuple[dict[str, Any], int]] = deque()  # (document, refusals)
        self._writer: asyncio.Task[None] | None = None
        self._emptied = asyncio.Event()
        self._emptied.set()
        #: True while the last write found the store away (reads then skip it, see `answered`).
        self.away = False
        self.dropped = 0

    @property
    def spooled(self) -> int:
        """Documents waiting to be written."""
        return len(self._spool)

    async def record(self, env: Envelope[InferenceRequested], outcome: Outcome) -> None:
        """Log one request: spooled at once, written in the background (a duplicate of an
        earlier delivery's log is not an error). Never waits for the store."""
        if len(self._spool) >= self._capacity:
            self.dropped += 1
            log.error(
                "ondemand log spool full (%d): log of %s dropped (%d so far); its outcome is "
                "still on the logs topic",
                self._capacity,
                env.id,
                self.dropped,
            )
            return
        self._spool.append((log_doc(env, outcome), 0))
        self._emptied.clear()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())

    async def close(self, timeout_s: float = 5.0) -> None:
        """Give the writer `timeout_s` to empty the spool, then stop it."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._emptied.wait()
        except TimeoutError:
            log.error("%d ondemand logs not written at close (store away)", len(self._spool))
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _write_all(self) -> None:
        pause = 0.0
        try:
            if self._linger > 0:
                await asyncio.sleep(self._linger)
            while self._spool:
                batch = [self._spool[i] for i in range(min(self._max, len(self._spool)))]
                try:
                    results = await self._insert([doc for doc, _ in batch])
                except Exception as exc:  # not a store fault: the documents' own, say
                    log.exception("ondemand log insert failed")
                    results = [exc] * len(batch)
                away = any(isinstance(r, StoreUnavailable) for r in results)
                for _ in batch:  # the batch leaves the front; what must be retried goes back
                    self._spool.popleft()
                again = []
                for (doc, refusals), result in zip(batch, results, strict=True):
                    if result is None:
                        continue
                    if away or refusals + 1 < self._refused_attempts:
                        again.append((doc, refusals if away else refusals + 1))
                    else:
                        self.dropped += 1
                        log.error("ondemand log of %s refused, dropped: %s", doc["_id"], result)
                self._spool.extendleft(reversed(again))  # in their order, before newer ones
                self.away = away
                if again:
                    pause = min(self._retry_cap, max(0.1, pause * 2))
                    log.warning("%d ondemand logs kept; next try in %.1fs", len(again), pause)
                    await asyncio.sleep(pause)
                else:
                    pause = 0.0
        finally:
            if not self._spool:
                self._emptied.set()

    async def answered(self, request_id: str) -> bool:
        """Whether a router has logged an outcome for this request; False when the store cannot
        tell (then the caller goes on: a model called twice beats a request never answered).
        While the log writer finds the store away, it is not asked (an answer would take the
        server selection timeout, on the caller's path)."""
        if self.away:
            return False
        try:
            with store_errors():
                found = await self._logs.find_one({"_id": request_id}, {"_id": 1})
        except StoreUnavailable as exc:
            log.warning("could not check whether %s was answered: %s", request_id, exc)
            return False
        return found is not None

    async def _insert(self, docs: Sequence[dict[str, Any]]) -> list[Exception | None]:
        try:
            with store_errors():
                await self._logs.insert_many(list(docs), ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            bad = {e["index"] for e in errors if e.get("code") != 11000}
            failure = StoreRefused(f"log insert failed: {errors[:1]}")
            return [failure if i in bad else None for i in range(len(docs))]
        except StoreUnavailable as exc:
            return [exc] * len(docs)
        return [None] * len(docs)


async def _call(operation: Any) -> Any:
    with store_errors():
        return await operation
