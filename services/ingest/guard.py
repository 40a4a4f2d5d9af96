"""The checks between "the token is valid" and "the request is published": the caller's roles
against the per-role networks, and the quotas. Built once per process from the settings."""

from __future__ import annotations

import logging

from fastapi import Request

from services.ingest.access import NetworkPolicy, client_address, networks, refusal
from services.ingest.auth import Principal
from services.ingest.quotas import ActiveTasks, Lookup, SlidingWindow, exceeded, limit_for
from services.ingest.settings import IngestSettings

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
    """Per-role networks and quotas for one ingest process."""

    def __init__(self, settings: IngestSettings, lookup: Lookup) -> None:
        self._settings = settings
        self.policy = policy_from(settings)
        self._rates = SlidingWindow(settings.quota_window_s)
        self.tasks = ActiveTasks(lookup, settings.task_slot_max_age_s)

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
            wait = self._rates.take((who.user, path), limit)
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
        if limit is not None and not await self.tasks.room(who.user, limit):
            raise exceeded(
                f"Quota reached: {limit} of your tasks are queued or running.",
                self._settings.quota_window_s,
            )
        self.tasks.add(who.user, request_id)

    def release(self, who: Principal, request_id: str) -> None:
        """The request was not accepted after all (publish failed): free its slot."""
        self.tasks.discard(who.user, request_id)
