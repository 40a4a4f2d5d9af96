"""The checks between "the token is valid" and "the request is published": the caller's roles
against the per-role networks, and the quotas. Built once per process from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase

from runtime.doclocks import DocLocks
from runtime.mongo import Doc, is_ferretdb
from services.ingest.access import NetworkPolicy, client_address, networks, refusal
from services.ingest.auth import Principal
from services.ingest.quotas import ActiveTasks, Lookup, SlidingWindow, exceeded, limit_for
from services.ingest.settings import IngestSettings
from services.ingest.shared_quotas import (
    MongoCounters,
    MongoSlots,
    SharedTasks,
    SharedWindow,
    StoreDown,
    ensure_indexes,
)

log = logging.getLogger(__name__)


def policy_from(settings: IngestSettings) -> NetworkPolicy:
    """The network policy; ValueError names a bad CIDR at start-up."""
    return NetworkPolicy(
        allowed=networks(settings.allowed_networks),
        by_role={role: networks(cidrs) for role, cidrs in settings.role_networks.items()},
        proxies=networks(settings.trusted_proxies),
    )


def roles_of(who: Principal) -> frozenset[str]:
    """mlbus roles of a caller: admin, operator, user (everyone is at least a user)."""
    roles = {"user", *who.grants}
    if who.is_admin:
        roles.add("admin")
    return frozenset(roles)


class Guard:
    """Per-role networks and quotas. With `shared` counters (MongoDB), quotas hold across every
    ingest copy; this process's own counts stand in while the store does not answer."""

    def __init__(
        self,
        settings: IngestSettings,
        lookup: Lookup,
        shared: tuple[SharedWindow, SharedTasks] | None = None,
    ) -> None:
        self._settings = settings
        self.policy = policy_from(settings)
        self._rates = SlidingWindow(settings.quota_window_s)
        self.tasks = ActiveTasks(lookup, settings.task_slot_max_age_s)
        self._shared = shared
        self._alone = False  # counting alone since the store stopped answering (logged once)

    def check_network(self, request: Request, who: Principal) -> None:
        """403 when a role of the caller requires networks the address is not in."""
        if not self.policy.by_role:
            return
        address = client_address(self.policy, request.scope)
        if not self.policy.allows_roles(address, roles_of(who)):
            log.warning("refused %s for %s: outside its role's networks", address, who.user)
            raise refusal(address)

    async def admit(self, request: Request, who: Principal, path: str) -> None:
        """All checks for one request on `path` ('enqueue' or 'ondemand'); raises the error."""
        self.check_network(request, who)
        roles = roles_of(who)
        limit = self._settings.user_rate_quotas.get(who.user, {}).get(path)
        if limit is None:
            limit = limit_for(self._settings.rate_quotas.get(path, {}), roles)
        if limit is not None:
            wait = await self._take_rate(who.user, path, limit)
            if wait is not None:
                window = f"{self._settings.quota_window_s:g} s"
                raise exceeded(f"Quota reached: {limit} {path} requests per {window}.", wait)
        if path == "enqueue":
            await self._reserve_task(who, roles, request.state.request_id)

    async def _reserve_task(self, who: Principal, roles: frozenset[str], request_id: str) -> None:
        """Take a task slot now (not after publishing), so a burst cannot overshoot."""
        limit = self._settings.user_task_quotas.get(who.user)
        if limit is None:
            limit = limit_for(self._settings.task_quotas, roles)
        if limit is not None and not await self._room(who.user, request_id, limit):
            raise exceeded(
                f"Quota reached: {limit} of your tasks are queued or running.",
                self._settings.quota_window_s,
            )
        self.tasks.add(who.user, request_id)

    async def _take_rate(self, user: str, path: str, limit: int) -> float | None:
        if self._shared is not None:
            try:
                wait = await self._shared[0].take(user, path, limit)
            except StoreDown as e:
                self._counting_alone(e)
            else:
                self._counting_shared()
                return wait
        return self._rates.take((user, path), limit)

    async def _room(self, user: str, request_id: str, limit: int) -> bool:
        if self._shared is not None:
            try:
                room = await self._shared[1].reserve(user, request_id, limit)
            except StoreDown as e:
                self._counting_alone(e)
            else:
                self._counting_shared()
                return room
        return await self.tasks.room(user, limit)

    def _counting_alone(self, e: StoreDown) -> None:
        if not self._alone:
            self._alone = True
            log.warning("quotas counted by this copy alone: MongoDB did not answer (%s)", e)

    def _counting_shared(self) -> None:
        if self._alone:
            self._alone = False
            log.warning("quotas counted across copies again: MongoDB answers")

    async def release(self, who: Principal, request_id: str) -> None:
        """The request was not accepted after all (publish failed): free its slot."""
        self.tasks.discard(who.user, request_id)
        if self._shared is not None:
            try:
                await self._shared[1].release(request_id)
            except StoreDown as e:  # the sweep at the limit frees it later
                log.warning("task slot of %s not freed now: store unreachable (%s)", request_id, e)


async def guard_of(
    settings: IngestSettings,
    db: AsyncDatabase[Doc],
    lookup: Lookup,
    stack: contextlib.AsyncExitStack,
) -> Guard:
    """The process's guard; with `shared_quotas`, its counters in MongoDB and their clean-up."""
    if not settings.shared_quotas:
        return Guard(settings, lookup)
    await ensure_indexes(db)
    locks = DocLocks(db, on=await is_ferretdb(db), wait_s=settings.quota_store_timeout_s)
    counters = MongoCounters(db, settings.quota_store_timeout_s, locks)
    cleaner = asyncio.create_task(_forget_old_buckets(counters, settings.quota_window_s))
    stack.callback(cleaner.cancel)
    window = SharedWindow(counters, settings.quota_window_s)
    slots = MongoSlots(db, settings.quota_store_timeout_s)
    tasks = SharedTasks(slots, lookup, settings.task_slot_max_age_s)
    sweeper = asyncio.create_task(_sweep_seats(tasks, SEAT_SWEEP_S))
    stack.callback(sweeper.cancel)
    return Guard(settings, lookup, (window, tasks))


#: How often each copy frees the seats of ended requests (see shared_quotas.py).
SEAT_SWEEP_S = 60.0


async def _sweep_seats(tasks: SharedTasks, every_s: float) -> None:
    """Free the seats of ended requests, every `every_s` (a sweep at a user's limit does it
    too, but only for that user)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await tasks.sweep()
        except StoreDown as e:
            log.info("seats of ended requests kept for now: %s", e)
        except Exception:  # a bug must not end the sweeps
            log.exception("seat sweep failed")


async def _forget_old_buckets(counters: MongoCounters, window_s: float) -> None:
    """Every window, drop the buckets that no window can count any more."""
    while True:
        await asyncio.sleep(max(window_s, 1.0))
        try:
            await counters.forget_before(datetime.now(UTC) - timedelta(seconds=3 * window_s))
        except StoreDown as e:
            log.info("old quota buckets kept for now: %s", e)
