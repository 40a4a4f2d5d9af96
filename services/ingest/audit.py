"""The audit trail of admin changes (`admin_audit`): who changed which mapping, when, and the
document before and after. Read at `GET /v1/admin/audit`, newest first.

Entries are keyed by a time-ordered id, so "newest first" is an `_id` order; the collection only
grows with admin changes (small), so its one sorted read is cheap even on FerretDB. Tokens never
reach it: the mappings hold none, and any field named like a credential is masked anyway.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from runtime.http import request_id_of
from runtime.mongo import Doc, StoreUnavailable, database, store_errors
from schemas.admin import AuditEntry, AuditPage
from schemas.base import new_event_id, utcnow
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import admin_principal, ingest_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(admin_principal)]
AUDIT = "admin_audit"
EVENT_ID = r"^[0-9a-f]{32}$"
_SECRET_WORDS = ("token", "secret", "password", "credential", "authorization")


def scrub(value: Any) -> Any:
    """A copy with credential-like fields masked, at any depth."""
    if isinstance(value, dict):
        return {
            k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _doc(model: BaseModel | None) -> dict[str, Any] | None:
    return scrub(model.model_dump(mode="json")) if model is not None else None


class AuditTrail:
    """Records the changes of one admin request."""

    def __init__(self, db: AsyncDatabase[Doc], actor: str, request_id: str) -> None:
        self._audit, self._actor, self._request_id = db[AUDIT], actor, request_id

    async def record(
        self, action: str, kind: str, key: str, before: BaseModel | None, after: BaseModel | None
    ) -> None:
        """Append one entry. The change is already made: a failure here is logged loudly, not
        turned into an error that would make the client retry a change that succeeded."""
        entry = {
            "_id": new_event_id(),
            "at": utcnow(),
            "actor": self._actor,
            "action": action,
            "kind": kind,
            "key": key,
            "before": _doc(before),
            "after": _doc(after),
            "request_id": self._request_id,
        }
        try:
            with store_errors():
                await self._audit.insert_one(entry)
        except StoreUnavailable:
            log.exception(
                "audit entry NOT recorded: %s %s %s by %s", action, kind, key, self._actor
            )


def audit_trail(request: Request, who: Admin) -> AuditTrail:
    """The trail for this admin request."""
    db = database(request.app.state.mongo, ingest_of(request).settings)
    return AuditTrail(db, who.user, request_id_of(request))


Audited = Annotated[AuditTrail, Depends(audit_trail)]


@router.get("/audit", response_model=AuditPage)
async def audit(
    request: Request,
    who: Admin,
    *,
    before: Annotated[
        str | None, Query(pattern=EVENT_ID, description="Only older than this id.")
    ] = None,
    kind: Annotated[
        str | None,
        Query(pattern=r"^(task_mappings|serving_machines|endpoint_mappings)$", description="Kind."),
    ] = None,
    key: Annotated[
        str | None,
        Query(min_length=1, max_length=300, description="Only this mapping's changes (its id)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
) -> AuditPage:
    """Every admin change, newest first, by pages."""
    query: dict[str, Any] = {} if before is None else {"_id": {"$lt": before}}
    if kind is not None:
        query["kind"] = kind
    if key is not None:
        query["key"] = key
    db = database(request.app.state.mongo, ingest_of(request).settings)
    try:
        with store_errors():
            docs = await db[AUDIT].find(query).sort("_id", -1).limit(limit).to_list(None)
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
    items = [AuditEntry(id=str(d.pop("_id")), **d) for d in docs]
    more = len(docs) == limit
    return AuditPage(items=items, next_before=items[-1].id if more else None)
