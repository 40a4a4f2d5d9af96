"""Building a request's timeline for its requester (admins also see internal ids and the
artifacts' real URIs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.api import RequestStatus, TimelineEntry
from schemas.base import utcnow
from services.ingest.auth import Principal
from services.ingest.deps import Ingest

_ADMIN_FIELDS = ("template_task_id", "clone_id", "user", "trace_id")


async def request_status(ingest: Ingest, request_id: str, who: Principal) -> RequestStatus | None:
    """The status as `who` may see it, or None (unknown, or not theirs)."""
    doc = await ingest.store.enqueue_log(request_id)
    if doc is None:
        return _just_accepted(ingest, request_id, who)
    if doc.get("user") != who.user and not who.is_admin:
        return None
    admin: dict[str, Any] | None = None
    if who.is_admin:
        admin = {k: doc.get(k) for k in _ADMIN_FIELDS}
        admin["latency_ms"] = doc.get("latency_ms")
        admin["result_uris"] = doc.get("result_uris")
    return RequestStatus(
        request_id=request_id,
        kind="enqueue",
        status=doc["status"],
        task_id=doc.get("task_id"),
        queue=doc.get("queue"),
        queue_watched=doc.get("queue_watched"),
        queue_choice=doc.get("queue_choice"),
        error=doc.get("error"),
        results=doc.get("results"),
        timeline=[TimelineEntry(**h) for h in doc.get("history", [])],
        admin=admin,
    )


def _just_accepted(ingest: Ingest, request_id: str, who: Principal) -> RequestStatus | None:
    entry = ingest.recent.entries.get(request_id)
    if entry is None:
        return None
    user, task_id, queue, at = entry
    if user != who.user and not who.is_admin:
        return None
    accepted_at = datetime.fromisoformat(at)
    waited = (utcnow() - accepted_at).total_seconds()
    unseen = waited >= ingest.settings.unseen_after_s
    return RequestStatus(
        request_id=request_id,
        kind="enqueue",
        status="accepted",
        task_id=task_id,
        queue=queue,
        # 'accepted' lives only in this process's memory: past the bound it is no longer the
        # whole truth, and the requester is told so rather than left waiting in silence.
        error=_unseen(waited) if unseen else None,
        timeline=[TimelineEntry(status="accepted", at=accepted_at)],
    )


def _unseen(waited: float) -> str:
    return (
        f"No worker has picked this request up in {waited:.0f} s: the enqueuer is down or far "
        "behind. The request is kept on the bus and runs when a worker takes it."
    )
