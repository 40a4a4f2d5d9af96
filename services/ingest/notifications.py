"""Notifications for people: the live stream (Server-Sent Events) and the stored history.

Who sees what: a user sees the notifications addressed to them (their own tasks); admins and
operators see all, operator alerts included. The stream's event id is the notification id,
so a client that reconnects with `Last-Event-ID` (EventSource does this by itself) gets what it
missed, then the live feed (see stream.py for how).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from schemas.api import NotificationPage
from schemas.notifications import Notification
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, bearer_principal, ingest_of
from services.ingest.store import StoreUnavailable
from services.ingest.stream import Accepts, from_document

log = logging.getLogger(__name__)
router = APIRouter(tags=["notifications"])
IngestDep = Annotated[Ingest, Depends(ingest_of)]
User = Annotated[Principal, Depends(bearer_principal)]

EVENT_ID = r"^[0-9a-f]{32}$"
KEEPALIVE_S = 15.0
_BACKLOG_LIMIT = 1000


def sees_all(who: Principal) -> bool:
    """Admins and operators see every notification."""
    return who.is_operator  # admins are operators too


def filter_for(who: Principal) -> Accepts:
    """What `who` may see."""
    if sees_all(who):
        return lambda _: True
    return lambda n: n.user == who.user


def frame(notification: Notification) -> bytes:
    """One SSE event."""
    data = notification.model_dump_json()
    return f"id: {notification.id}\nevent: notification\ndata: {data}\n\n".encode()


@router.get(
    "/v1/notifications/stream",
    summary="Live notifications (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`: one `notification` event per "
            "notification (id = notification id, data = the notification as JSON), and a "
            "comment every 15 s to keep proxies from closing it. It ends when the token "
            "expires, with a last `token_expired` event (no id): reconnect with a fresh token "
            "and `Last-Event-ID` to go on where it stopped.",
            "content": {"text/event-stream": {}},
        }
    },
)
async def stream(
    ingest: IngestDep,
    who: User,
    last_event_id: Annotated[
        str | None,
        Header(pattern=EVENT_ID, description="Resume after this event (sent by EventSource)."),
    ] = None,
    after: Annotated[
        str | None,
        Query(pattern=EVENT_ID, description="Resume after this id (for clients without headers)."),
    ] = None,
) -> StreamingResponse:
    """Your notifications as they happen (admins and operators: everyone's)."""
    resume_from = last_event_id or after
    return StreamingResponse(
        _events(
            ingest,
            filter_for(who),
            None if sees_all(who) else who.user,
            resume_from,
            who.expires_at,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


#: The stream's last event when the token that opened it expires. It has no `id`, so the
#: client's Last-Event-ID stays the last notification it received.
TOKEN_EXPIRED = (
    b"event: token_expired\n"
    b'data: {"code": "token_expired", "message": "The access token of this stream expired; '
    b'reconnect with a fresh token and Last-Event-ID."}\n\n'
)


async def _events(
    ingest: Ingest,
    accepts: Accepts,
    user: str | None,
    resume_from: str | None,
    expires_at: float,
) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    with ingest.notifications.subscribe(accepts, resume_from) as (subscription, buffered):
        backlog = buffered
        if backlog is None:  # not in this process's buffer: from the store
            assert resume_from is not None
            backlog = await _stored_after(ingest, user, resume_from)
        for notification in backlog:
            subscription.sent.add(notification.id)
            yield frame(notification)
        while True:
            left = expires_at - time.time()
            if left <= 0:
                yield TOKEN_EXPIRED
                return
            try:
                item = await asyncio.wait_for(subscription.queue.get(), min(KEEPALIVE_S, left))
            except TimeoutError:
                if time.time() < expires_at:
                    yield b": keep-alive\n\n"
                continue
            if item is None:  # ended: server shutting down, or the client fell behind
                return
            if item.id in subscription.sent:  # already sent from the store's backlog
                subscription.sent.discard(item.id)
                continue
            yield frame(item)


async def _stored_after(ingest: Ingest, user: str | None, after: str) -> list[Notification]:
    try:
        docs = await ingest.store.notifications(user, after=after, limit=_BACKLOG_LIMIT)
    except StoreUnavailable as exc:  # resume is best effort: the live feed still starts
        log.warning("could not read missed notifications after %s: %s", after, exc)
        return []
    return [n for n in map(from_document, docs) if n is not None]


@router.get("/v1/notifications", summary="Stored notifications, newest first")
async def history(
    ingest: IngestDep,
    who: User,
    before: Annotated[
        str | None, Query(pattern=EVENT_ID, description="Only older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
) -> NotificationPage:
    """Your notifications (admins and operators: everyone's), newest first, by pages."""
    user = None if sees_all(who) else who.user
    try:
        docs = await ingest.store.notifications(user, before=before, limit=limit)
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
    items = [n for n in map(from_document, docs) if n is not None]
    more = len(docs) == limit
    return NotificationPage(items=items, next_before=str(docs[-1]["_id"]) if more else None)
