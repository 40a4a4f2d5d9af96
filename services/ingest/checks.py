"""What an admin is told when registering a mapping: a queue the cluster does not have is
refused (a typo would otherwise fail every request later), unless forced; a replica that does
not answer now is registered anyway, with a warning (it may simply not be up yet).

Queue names are checked against the monitor's read model of ClearML's queues (`queues`); when
it is empty or unreadable, the check cannot be made and says so instead of refusing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx
from fastapi import Request

from runtime.http import ApiError
from services.ingest.resources import ResourceReadModel
from services.ingest.store import StoreUnavailable

PROBE_TIMEOUT_S = 2.0


async def queue_warnings(request: Request, names: Iterable[str], *, force: bool) -> list[str]:
    """Warnings about `names`; 422 `unknown_queue` when the cluster lacks one (unless `force`)."""
    resources: ResourceReadModel = request.app.state.resources
    try:
        known = await resources.queue_names()
    except StoreUnavailable:
        return ["Queue names were not checked: the cluster's queue list could not be read."]
    if not known:
        return [
            "Queue names were not checked: mlbus has not seen the cluster's queues yet "
            "(is the monitor running?)."
        ]
    unknown = sorted(set(names) - known)
    if not unknown:
        return []
    listed = ", ".join(f"'{n}'" for n in unknown)
    if force:
        return [f"The cluster has no queue {listed} now; registered anyway (force)."]
    raise ApiError(
        422,
        "unknown_queue",
        f"The cluster has no queue {listed}. Known queues: {', '.join(sorted(known))}. "
        "Create it in ClearML first, or register anyway with ?force=true.",
        details={"unknown": unknown, "known": sorted(known)},
    )


def health_url(base_url: str) -> str:
    """ClearML Serving's `/health` sits beside `/serve`, at the node's root."""
    return f"{base_url.rstrip('/').removesuffix('/serve')}/health"


async def replica_warnings(base_urls: Iterable[str]) -> list[str]:
    """One warning per replica that does not answer its health check now."""
    urls = list(base_urls)
    timeout = httpx.Timeout(PROBE_TIMEOUT_S)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        outcomes = await asyncio.gather(
            *(client.get(health_url(u)) for u in urls), return_exceptions=True
        )
    warnings = []
    for url, outcome in zip(urls, outcomes, strict=True):
        if isinstance(outcome, httpx.Response) and outcome.status_code < 500:
            continue
        why = (
            f"HTTP {outcome.status_code}"
            if isinstance(outcome, httpx.Response)
            else type(outcome).__name__
        )
        warnings.append(
            f"Replica {url} did not answer {health_url(url)} ({why}); it is registered, and the "
            "router will skip it while it fails."
        )
    return warnings
