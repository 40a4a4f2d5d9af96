"""`GET /v1/resources` ("where can my task run now?") and the `auto` queue choice, both read from
the monitor's read models (`resources`, `queues`), cached for `resources_cache_s`.

Privacy: machine names, worker ids and addresses are shown only to admins and operators (as the
role map grants them); plain users get counts and queue summaries. Queue names are not
secret: users send them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, store_errors
from schemas.api import (
    GpuCounts,
    GpuSummary,
    MachineCounts,
    MachineSummary,
    QueueSummary,
    ResourcesView,
    TaskMapping,
)
from schemas.base import utcnow
from schemas.resources import QueueState, ResourceState
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import bearer_principal, ingest_of
from services.ingest.queue_choice import Choice, choose_queue
from services.ingest.store import StoreUnavailable

log = logging.getLogger(__name__)
router = APIRouter(tags=["resources"])
User = Annotated[Principal, Depends(bearer_principal)]
RESOURCES, QUEUES = "resources", "queues"


@dataclass(frozen=True)
class Snapshot:
    """The read models as last read."""

    machines: list[ResourceState]
    queues: dict[str, QueueState]  # by queue name


class ResourceReadModel:
    """Both collections in memory for `ttl_s`; concurrent readers share one read."""

    def __init__(
        self, db: AsyncDatabase[Doc], ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db, self._ttl_s, self._clock = db, ttl_s, clock
        self._cached: tuple[float, Snapshot] | None = None
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Snapshot:
        """The cached snapshot, read again once older than `ttl_s` (StoreUnavailable)."""
        async with self._lock:
            if self._cached is None or self._clock() - self._cached[0] >= self._ttl_s:
                self._cached = (self._clock(), await self._read())
            return self._cached[1]

    async def queue_names(self) -> set[str]:
        """The cluster's queue names, read now (not from the cache: an admin's registration is
        rare, and must neither see an old list nor leave one for `auto` to use)."""
        with store_errors():
            docs = await self._db[QUEUES].find({}, {"name": 1}).to_list()
        return {str(d["name"]) for d in docs if d.get("name")}

    async def _read(self) -> Snapshot:
        with store_errors():
            machines = await self._db[RESOURCES].find({}).to_list()
            queues = await self._db[QUEUES].find({}).to_list()
        return Snapshot(
            [m for d in machines if (m := _load(ResourceState, d, "machine_id")) is not None],
            {q.name: q for d in queues if (q := _load(QueueState, d, "queue_id")) is not None},
        )


def _load(model: Any, doc: dict[str, Any], id_field: str) -> Any:
    try:
        return model.model_validate({**doc, id_field: doc["_id"]})
    except ValueError as exc:
        log.warning("read model %s unreadable, skipped: %s", doc.get("_id"), exc)
        return None


def read_model_of(request: Request) -> ResourceReadModel:
    """The process's read model (made in the lifespan)."""
    found: ResourceReadModel = request.app.state.resources
    return found


def privileged(who: Principal) -> bool:
    """Admins and operators (by the role map, services/ingest/roles.py) see machine names,
    worker ids and addresses."""
    return who.is_operator  # admins are operators too


async def auto_queue(request: Request, mapping: TaskMapping) -> Choice:
    """The `auto` choice for a mapping; the default queue when no state can be read."""
    settings = ingest_of(request).settings
    try:
        snap = await read_model_of(request).snapshot()
    except StoreUnavailable as exc:
        log.warning("queue states unreadable (%s); auto falls back to the default queue", exc)
        return Choice(
            mapping.default_queue,
            f"auto: queue states could not be read; using the default queue "
            f"'{mapping.default_queue}'",
        )
    return choose_queue(
        mapping.default_queue,
        mapping.allowed_queues,
        snap.queues,
        utcnow(),
        settings.auto_state_max_age_s,
    )


@router.get("/v1/resources", response_model=ResourcesView)
async def resources(request: Request, who: User) -> ResourcesView:
    """Machines online and offline, GPUs free and busy, and every queue: its length, oldest
    wait, workers and whether a GPU is free behind it."""
    settings = ingest_of(request).settings
    try:
        snap = await read_model_of(request).snapshot()
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
    detailed = privileged(who)
    view = summarise(snap, detailed, utcnow(), settings.auto_state_max_age_s)
    if detailed and not who.is_admin:  # machine addresses are for admins only (operators: names)
        view = view.model_copy(
            update={
                "machine_details": [
                    m.model_copy(update={"ips": None}) for m in view.machine_details or []
                ]
            }
        )
    return view


def summarise(
    snap: Snapshot, detailed: bool, now: datetime, max_age_s: float = math.inf
) -> ResourcesView:
    """The view of a snapshot; `detailed` adds names, worker ids and addresses. Queues whose
    state is older than `max_age_s` are left out: deleted from ClearML, or the monitor is down."""
    online = [m for m in snap.machines if m.online]
    queues = {n: q for n, q in snap.queues.items() if (now - q.at).total_seconds() <= max_age_s}
    total = sum(len(m.gpus) for m in online)
    free = sum(m.free_gpus for m in online)
    stamps = [m.at for m in snap.machines] + [q.at for q in queues.values()]
    return ResourcesView(
        machines=MachineCounts(online=len(online), offline=len(snap.machines) - len(online)),
        gpus=GpuCounts(total=total, free=free, busy=max(0, total - free)),
        queues=[_queue(q, detailed, now) for _, q in sorted(queues.items())],
        machine_details=[_machine(m) for m in snap.machines] if detailed else None,
        at=max(stamps) if stamps else None,
    )


def _queue(q: QueueState, detailed: bool, now: datetime) -> QueueSummary:
    oldest = q.oldest_wait_s
    if oldest is not None:  # the state may be a few seconds old: the wait went on meanwhile
        oldest = round(oldest + max(0.0, (now - q.at).total_seconds()), 1)
    return QueueSummary(
        name=q.name,
        length=q.length,
        oldest_wait_s=oldest,
        avg_wait_s=q.avg_wait_s,
        workers=len(q.workers),
        idle_workers=len(q.idle_workers),
        free_gpus=q.free_gpus,
        has_free_gpu=q.free_gpus > 0,
        worker_ids=list(q.workers) if detailed else None,
    )


def _machine(m: ResourceState) -> MachineSummary:
    return MachineSummary(
        machine_id=m.machine_id,
        online=m.online,
        since=m.since,
        workers=m.workers,
        ips=m.ips,
        queues=m.queues,
        running_tasks=len(m.current_tasks),
        free_gpus=m.free_gpus,
        gpus=[
            GpuSummary(
                index=g.index,
                name=g.name,
                utilization_pct=g.utilization_pct,
                memory_used_mb=g.memory_used_mb,
                memory_total_mb=g.memory_total_mb,
                temperature_c=g.temperature_c,
            )
            for g in m.gpus
        ],
        last_heartbeat=m.last_heartbeat,
    )
