"""What every route needs, gathered on app.state by the lifespan; and the auth dependencies."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from fastapi import Request

from runtime import tracing
from runtime.http import correlation_id_of
from schemas.api import EndpointMapping, ServingMachine, TaskMapping
from services.ingest.auth import JwksVerifier, Principal
from services.ingest.bus import Publisher
from services.ingest.errors import forbidden, unauthorized
from services.ingest.guard import Guard
from services.ingest.idempotency import IdempotencyKeys
from services.ingest.mappings import MappingCache
from services.ingest.replies import ReplyWaiter
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from services.ingest.stream import NotificationHub

_RECENT = 50_000


@dataclass
class Recent:
    """Requests this instance accepted lately, so that a status read that races the enqueuer's
    first write still answers 'accepted' instead of 404."""

    entries: OrderedDict[str, tuple[str, str, str, str]] = field(default_factory=OrderedDict)

    def add(self, request_id: str, user: str, task_id: str, queue: str, at: str) -> None:
        """Remember an accepted request (bounded; oldest forgotten first)."""
        self.entries[request_id] = (user, task_id, queue, at)
        if len(self.entries) > _RECENT:
            self.entries.popitem(last=False)


@dataclass
class Ingest:
    """The wired pieces of one ingest process."""

    settings: IngestSettings
    store: IngestStore
    tasks: MappingCache[TaskMapping]
    machines: MappingCache[ServingMachine]
    endpoints: MappingCache[EndpointMapping]
    enqueue_bus: Publisher
    inference_bus: Publisher
    replies: ReplyWaiter
    verifier: JwksVerifier
    notifications: NotificationHub
    guard: Guard
    idempotency: IdempotencyKeys
    recent: Recent = field(default_factory=Recent)


def ingest_of(request: Request) -> Ingest:
    """The process's wiring."""
    found: Ingest = request.app.state.ingest
    return found


async def bearer_principal(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <token>`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send an access token in the Authorization header: 'Bearer <token>'.")
    ingest = ingest_of(request)
    principal = await ingest.verifier.verify(token.strip())
    ingest.guard.check_network(request, principal)
    return principal


async def compat_principal(request: Request) -> Principal:
    """The caller of a compatibility route, from the `access_token` in its JSON body: missing,
    empty or not text is 401, as a missing header is on /v1 (checked before the other fields)."""
    try:
        body = await request.json()
    except ValueError:  # the edge has parsed it already; a body FastAPI cannot read is 422 there
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise unauthorized("Send an access token in the body's 'access_token' field.")
    ingest = ingest_of(request)
    principal = await ingest.verifier.verify(token.strip())
    ingest.guard.check_network(request, principal)
    return principal


def trace_of(ingest: Ingest, request: Request) -> dict[str, str]:
    """The envelope's trace fields: this ingest, and the client's correlation id if it sent one
    (so a client's own id appears in the request's logs without ever keying anything)."""
    trace = {"ingest": ingest.settings.instance}
    correlation = correlation_id_of(request)
    if correlation is not None:
        trace["correlation_id"] = correlation
    trace_id = tracing.trace_id()
    if trace_id is not None:  # kept in the request's log, shown to admins
        trace["trace_id"] = trace_id
    return trace


async def admin_principal(request: Request) -> Principal:
    """The caller, who must be an admin."""
    principal = await bearer_principal(request)
    if not principal.is_admin:
        raise forbidden("admin_required", "This operation needs the admin role.")
    return principal
