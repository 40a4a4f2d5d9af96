"""The router's MongoDB adapter: reads `serving_machines` and `endpoint_mappings` (written by the
ingest admin API) and `ondemand_logs` (one document per request, `_id` = request id, written by
the logger from the RequestLogged the router publishes with each reply: the router writes
nothing to MongoDB, so no reply waits for it).

Single lookups are by `_id`, the only index FerretDB answers from; the periodic reload reads the
two (small) mapping collections whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, store_errors
from schemas.collections import ENDPOINT_MAPPINGS, ONDEMAND_LOGS, SERVING_MACHINES

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


class OnDemandLogs:
    """Reads `ondemand_logs` (written by the logger, from each call's RequestLogged): whether a
    call was answered already. Never on a fresh call's path (see the handler). A caller waits at
    most `timeout_s` for a lookup (which is not cancelled: it ends in the background, within the
    client's own timeouts), and after one that failed or was not waited for, the store is not
    asked for `rest_s`: while MongoDB is away each late delivery would otherwise wait for it, on
    its caller's path."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        *,
        timeout_s: float = 0.5,
        rest_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logs, self._timeout, self._rest = db[ONDEMAND_LOGS], timeout_s, rest_s
        self._clock = clock
        self._asleep_until = float("-inf")
        self._late: set[asyncio.Task[Any]] = set()  # lookups not waited for, ending

    @property
    def pending(self) -> int:
        """Lookups not waited for that are still running."""
        return len(self._late)

    async def answered(self, request_id: str) -> bool:
        """Whether a router has logged an outcome for this request; False when the store cannot
        tell in time (then the caller goes on: a model called twice beats a request never
        answered)."""
        if self._clock() < self._asleep_until:
            return False
        lookup = asyncio.ensure_future(self._find(request_id))
        done, _ = await asyncio.wait({lookup}, timeout=self._timeout)
        if lookup not in done:
            self._late.add(lookup)
            lookup.add_done_callback(self._ended)
            return self._resting(request_id, f"no answer within {self._timeout:g} s")
        failure = lookup.exception()
        if failure is not None:
            return self._resting(request_id, str(failure))
        return bool(lookup.result())

    async def _find(self, request_id: str) -> bool:
        with store_errors():
            return await self._logs.find_one({"_id": request_id}, {"_id": 1}) is not None

    def _resting(self, request_id: str, why: str) -> bool:
        self._asleep_until = self._clock() + self._rest
        log.warning(
            "could not check whether %s was answered (%s); not asking for %.0f s",
            request_id,
            why,
            self._rest,
        )
        return False

    def _ended(self, lookup: asyncio.Task[Any]) -> None:
        self._late.discard(lookup)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: nobody waits for it any more


async def _call(operation: Any) -> Any:
    with store_errors():
        return await operation
