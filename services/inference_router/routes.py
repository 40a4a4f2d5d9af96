"""Where a request goes: the cached machines and endpoint mappings, and one replica pool per
machine.

The cache is reloaded every `mapping_refresh_s`, so a deleted mapping stops routing within that
time; a request for a pair that is not cached is looked up by `_id` at once, so a new mapping
routes on its first request, on every router, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from services.inference_router.errors import StoreUnavailable
from services.inference_router.model import ModelClient
from services.inference_router.replicas import BreakerListener, ReplicaPool
from services.inference_router.settings import InferenceRouterSettings
from services.inference_router.store import Machine, Mapping, MappingStore, mapping_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """A resolved request: the mapping, its machine and the machine's replicas."""

    mapping: Mapping
    machine: Machine
    pool: ReplicaPool


class RouteTable:
    """Cached machines, mappings and replica pools."""

    def __init__(
        self,
        store: MappingStore,
        settings: InferenceRouterSettings,
        on_breaker: BreakerListener | None = None,
    ) -> None:
        self._store, self._settings, self._on_breaker = store, settings, on_breaker
        self._machines: dict[str, Machine] = {}
        self._mappings: dict[str, Mapping] = {}
        self.pools: dict[str, ReplicaPool] = {}

    async def resolve(self, machine_id: str, endpoint: str) -> Route | None:
        """The route of a (machine, endpoint) pair, or None when either is not mapped."""
        mapping = self._mappings.get(mapping_key(machine_id, endpoint))
        machine = self._machines.get(machine_id)
        if mapping is None:
            mapping = await self._store.mapping(machine_id, endpoint)
            if mapping is None:
                return None
            self._mappings[mapping_key(machine_id, endpoint)] = mapping
        if machine is None:
            machine = await self._store.machine(machine_id)
            if machine is None:
                return None
            self._machines[machine_id] = machine
        return Route(mapping, machine, self._pool(machine))

    def _pool(self, machine: Machine) -> ReplicaPool:
        pool = self.pools.get(machine.machine_id)
        urls = list(machine.base_urls)
        if pool is None:
            pool = ReplicaPool(
                machine.machine_id,
                urls,
                failures=self._settings.breaker_failures,
                cooldown_s=self._settings.breaker_cooldown_s,
                on_change=self._on_breaker,
            )
            self.pools[machine.machine_id] = pool
        elif pool.urls != urls:
            pool.resize(urls)
        return pool

    async def refresh(self) -> None:
        """Reload every machine and mapping (forgetting deleted ones)."""
        machines, mappings = await asyncio.gather(
            self._store.all_machines(), self._store.all_mappings()
        )
        self._machines, self._mappings = machines, mappings
        for machine in machines.values():
            self._pool(machine)
        for gone in set(self.pools) - set(machines):
            del self.pools[gone]

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        """Reload until `stop`; a failed reload keeps the last good cache."""
        while not await _wait(stop, self._settings.mapping_refresh_s):
            try:
                await self.refresh()
            except StoreUnavailable as exc:
                log.warning("mapping reload failed, keeping the cache: %s", exc)

    async def probe_health(self, model: ModelClient, stop: asyncio.Event) -> None:
        """Ask every replica's `/health` every `health_interval_s` (a node without one counts
        as healthy; its call outcomes still drive its breaker)."""
        interval = self._settings.health_interval_s
        if interval <= 0:
            return
        while not await _wait(stop, interval):
            replicas = [r for pool in list(self.pools.values()) for r in pool.replicas]
            results = await asyncio.gather(*(model.healthy(r.url) for r in replicas))
            for replica, healthy in zip(replicas, results, strict=True):
                replica.probe_ok = healthy is not False


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` or until `stop`; True when stopping."""
    try:
        # not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation (runtime.rdkafka)
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True
