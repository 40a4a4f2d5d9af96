"""Routes of the HTTP bridge: enqueue (both paths), request status, task mappings (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from runtime.http import ApiError
from schemas.api import (
    CompatEnqueueRequest,
    EnqueueAccepted,
    EnqueueRequest,
    RequestStatus,
    TaskMapping,
    TaskMappingIn,
)
from schemas.base import JSONValue, utcnow
from schemas.codec import envelope_for
from schemas.enqueue import EnqueueTask
from schemas.topics import ENQUEUE_REQUESTS
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, admin_principal, bearer_principal, ingest_of
from services.ingest.mappings import opaque_id
from services.ingest.status import request_status
from services.ingest.store import MappingExists

router = APIRouter()
IngestDep = Annotated[Ingest, Depends(ingest_of)]
User = Annotated[Principal, Depends(bearer_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]


async def _enqueue(
    ingest: Ingest,
    request: Request,
    who: Principal,
    *,
    task_id: str,
    queue: str | None,
    params: dict[str, JSONValue],
) -> EnqueueAccepted:
    mapping = await ingest.cache.task(task_id)
    if mapping is None:
        raise errors.not_found("task_not_found", f"No task is registered under id {task_id}.")
    chosen = queue or mapping.default_queue
    if chosen != mapping.default_queue and chosen not in mapping.allowed_queues:
        allowed = ", ".join(sorted({mapping.default_queue, *mapping.allowed_queues}))
        raise errors.forbidden(
            "queue_not_allowed", f"This task may not run on queue '{chosen}'. Allowed: {allowed}."
        )
    payload = EnqueueTask(
        task_id=task_id, template_task_id=mapping.clearml_task_id, queue_name=chosen, input=params
    )
    rid = request.state.request_id
    envelope = envelope_for(
        ENQUEUE_REQUESTS,
        payload,
        id=rid,
        user=who.user,
        trace={"ingest": ingest.settings.instance},
    )
    await ingest.publisher.publish(ENQUEUE_REQUESTS, envelope)
    ingest.recent.add(rid, who.user, task_id, chosen, envelope.created_at.isoformat())
    return EnqueueAccepted(status="queued", request_id=rid, queue=chosen)


@router.post("/v1/enqueue", status_code=202, response_model=EnqueueAccepted, tags=["enqueue"])
async def enqueue(
    body: EnqueueRequest, request: Request, ingest: IngestDep, who: User
) -> EnqueueAccepted:
    """Start a training run of the task mapped to `task_id`, with `input` as parameters."""
    return await _enqueue(
        ingest, request, who, task_id=body.task_id, queue=body.queue_name, params=body.input
    )


@router.post(
    "/clearml/serve/enqueue_task",
    status_code=202,
    response_model=EnqueueAccepted,
    tags=["compatibility"],
)
async def compat_enqueue(
    body: CompatEnqueueRequest, request: Request, ingest: IngestDep
) -> EnqueueAccepted:
    """The Snap4City Node-RED enqueue node's call: token in the body, `status: queued` back."""
    who = await ingest.verifier.verify(body.access_token)
    return await _enqueue(
        ingest, request, who, task_id=body.task_id, queue=body.queue, params=body.params or {}
    )


@router.get("/v1/requests/{request_id}", response_model=RequestStatus, tags=["requests"])
async def get_request(request_id: str, ingest: IngestDep, who: User) -> RequestStatus:
    """The request's timeline. Another user's request is 'not found', not 'forbidden'."""
    status = await request_status(ingest, request_id, who)
    if status is None:
        raise errors.not_found("request_not_found", f"No request {request_id} of yours exists.")
    return status


@router.post("/v1/admin/task-mappings", status_code=201, response_model=TaskMapping, tags=["admin"])
async def add_task_mapping(body: TaskMappingIn, ingest: IngestDep, who: Admin) -> TaskMapping:
    """Register a ClearML template under a new opaque id."""
    secret = ingest.settings.id_secret.get_secret_value().encode()
    allowed = sorted(set(body.allowed_queues) - {body.default_queue})
    mapping = TaskMapping(
        task_id=opaque_id(secret, body.clearml_task_id),
        clearml_task_id=body.clearml_task_id,
        default_queue=body.default_queue,
        allowed_queues=allowed,
        description=body.description,
        created_at=utcnow(),
        created_by=who.user,
    )
    try:
        await ingest.store.add_task_mapping(mapping)
    except MappingExists as exc:
        raise ApiError(
            409,
            "mapping_exists",
            f"This task is already mapped as {mapping.task_id}.",
            details={"task_id": mapping.task_id},
        ) from exc
    ingest.cache.put(mapping)
    return mapping


@router.get("/v1/admin/task-mappings", response_model=list[TaskMapping], tags=["admin"])
async def list_task_mappings(ingest: IngestDep, who: Admin) -> list[TaskMapping]:
    """Every task mapping."""
    return await ingest.store.all_task_mappings()


@router.delete("/v1/admin/task-mappings/{task_id}", status_code=204, tags=["admin"])
async def delete_task_mapping(task_id: str, ingest: IngestDep, who: Admin) -> None:
    """Unregister a mapping; requests already on the bus still complete."""
    if not await ingest.store.delete_task_mapping(task_id):
        raise errors.not_found("task_not_found", f"No task is registered under id {task_id}.")
    ingest.cache.drop(task_id)
