"""The router's MongoDB adapter: reads `serving_machines` and `endpoint_mappings` (written by the
ingest admin API), writes `ondemand_logs` (one document per request, `_id` = request id).

Single lookups are by `_id`, the only index FerretDB answers from; the periodic reload reads the
two (small) mapping collections whole. Log inserts from concurrent requests share one
`insert_many` (group commit); a duplicate `_id` means an earlier delivery already logged it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from runtime.batching import GroupCommit
from runtime.mongo import Doc, store_errors
from schemas.base import Envelope
from schemas.inference import InferenceRequested
from services.inference_router.errors import StoreUnavailable
from services.inference_router.outcomes import Outcome

SERVING_MACHINES = "serving_machines"
ENDPOINT_MAPPINGS = "endpoint_mappings"
ONDEMAND_LOGS = "ondemand_logs"
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
    """Writes request logs, concurrent ones in one `insert_many`."""

    def __init__(self, db: AsyncDatabase[Doc], linger_s: float = 0.0) -> None:
        self._logs = db[ONDEMAND_LOGS]
        self._inserts: GroupCommit[dict[str, Any], None] = GroupCommit(
            self._insert, linger_s=linger_s
        )

    async def record(self, env: Envelope[InferenceRequested], outcome: Outcome) -> None:
        """Log one request (a duplicate of an earlier delivery's log is not an error)."""
        await self._inserts.submit(log_doc(env, outcome))

    async def answered(self, request_id: str) -> bool:
        """Whether a router has logged an outcome for this request; False when the store cannot
        tell (then the caller goes on: a model called twice beats a request never answered)."""
        try:
            with store_errors():
                found = await self._logs.find_one({"_id": request_id}, {"_id": 1})
        except StoreUnavailable as exc:
            log.warning("could not check whether %s was answered: %s", request_id, exc)
            return False
        return found is not None

    async def _insert(self, docs: Sequence[dict[str, Any]]) -> list[BaseException | None]:
        try:
            with store_errors():
                await self._logs.insert_many(list(docs), ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            bad = {e["index"] for e in errors if e.get("code") != 11000}
            failure = StoreUnavailable(f"log insert failed: {errors[:1]}")
            return [failure if i in bad else None for i in range(len(docs))]
        except StoreUnavailable as exc:
            return [exc] * len(docs)
        return [None] * len(docs)


async def _call(operation: Any) -> Any:
    with store_errors():
        return await operation
