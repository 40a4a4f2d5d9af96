"""Routes of the HTTP bridge: enqueue (both paths) and request status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from schemas.api import (
    CompatEnqueueRequest,
    EnqueueAccepted,
    EnqueueRequest,
    RequestStatus,
)
from schemas.base import JSONValue
from schemas.codec import envelope_for
from schemas.enqueue import EnqueueTask
from schemas.topics import ENQUEUE_REQUESTS
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, bearer_principal, compat_principal, ingest_of, trace_of
from services.ingest.idempotency import Answer, run_once
from services.ingest.queue_choice import AUTO
from services.ingest.resources import auto_queue
from services.ingest.status import request_status

router = APIRouter()
IngestDep = Annotated[Ingest, Depends(ingest_of)]
User = Annotated[Principal, Depends(bearer_principal)]
CompatUser = Annotated[Principal, Depends(compat_principal)]


async def _enqueue(
    ingest: Ingest,
    request: Request,
    who: Principal,
    *,
    task_id: str,
    queue: str | None,
    params: dict[str, JSONValue],
) -> EnqueueAccepted:
    mapping = await ingest.tasks.get(task_id)
    if mapping is None:
        raise errors.not_found("task_not_found", f"No task is registered under id {task_id}.")
    choice = await auto_queue(request, mapping) if queue == AUTO else None
    chosen = choice.queue if choice is not None else queue or mapping.default_queue
    if chosen != mapping.default_queue and chosen not in mapping.allowed_queues:
        allowed = ", ".join(sorted({mapping.default_queue, *mapping.allowed_queues}))
        raise errors.forbidden(
            "queue_not_allowed", f"This task may not run on queue '{chosen}'. Allowed: {allowed}."
        )
    reason = choice.reason if choice is not None else None
    payload = EnqueueTask(
        task_id=task_id,
        template_task_id=mapping.clearml_task_id,
        queue_name=chosen,
        input=params,
        queue_choice=reason,
    )
    rid = request.state.request_id
    envelope = envelope_for(
        ENQUEUE_REQUESTS,
        payload,
        id=rid,
        user=who.user,
        trace=trace_of(ingest, request),
    )
    await ingest.enqueue_bus.publish(ENQUEUE_REQUESTS, envelope)
    ingest.recent.add(rid, who.user, task_id, chosen, envelope.created_at.isoformat())
    return EnqueueAccepted(status="queued", request_id=rid, queue=chosen, queue_choice=reason)


async def _admitted(
    ingest: Ingest,
    request: Request,
    who: Principal,
    *,
    task_id: str,
    queue: str | None,
    params: dict[str, JSONValue],
) -> EnqueueAccepted:
    """Quotas and per-role networks first; a task slot taken for a request that then fails
    (unknown task, bus down) is given back."""
    await ingest.guard.admit(request, who, "enqueue")
    try:
        return await _enqueue(ingest, request, who, task_id=task_id, queue=queue, params=params)
    except BaseException:
        await ingest.guard.release(who, request.state.request_id)
        raise


async def _enqueue_once(
    ingest: Ingest,
    request: Request,
    who: Principal,
    body: EnqueueRequest | CompatEnqueueRequest,
    *,
    task_id: str,
    queue: str | None,
    params: dict[str, JSONValue],
) -> Response:
    """Once per Idempotency-Key: a retry gets the first answer and its request id."""

    async def run() -> Answer:
        accepted = await _admitted(
            ingest, request, who, task_id=task_id, queue=queue, params=params
        )
        return Answer(202, accepted.model_dump(mode="json"))

    return await run_once(
        ingest.idempotency,
        request,
        who.user,
        body,
        running_s=ingest.settings.enqueue_running_s,
        run=run,
    )


@router.post("/v1/enqueue", status_code=202, response_model=EnqueueAccepted, tags=["enqueue"])
async def enqueue(body: EnqueueRequest, request: Request, ingest: IngestDep, who: User) -> Response:
    """Start a training run of the task mapped to `task_id`, with `input` as parameters.
    `queue_name: "auto"` lets mlbus pick the allowed queue where it would start soonest. A retry
    that must not start a second run sends the same `Idempotency-Key` header."""
    return await _enqueue_once(
        ingest, request, who, body, task_id=body.task_id, queue=body.queue_name, params=body.input
    )


@router.post(
    "/clearml/serve/enqueue_task",
    status_code=202,
    response_model=EnqueueAccepted,
    tags=["compatibility"],
)
@router.post(
    "/clearml/serve/enqueue_task/", status_code=202, include_in_schema=False
)  # the node's URL may end in a slash: answered here, never redirected (see runtime/http.py)
async def compat_enqueue(
    body: CompatEnqueueRequest, request: Request, ingest: IngestDep, who: CompatUser
) -> Response:
    """The Snap4City Node-RED enqueue node's call: token in the body, `status: queued` back."""
    return await _enqueue_once(
        ingest,
        request,
        who,
        body,
        task_id=body.task_id,
        queue=body.queue,
        params=body.params or {},
    )


@router.get("/v1/requests/{request_id}", response_model=RequestStatus, tags=["requests"])
async def get_request(request_id: str, ingest: IngestDep, who: User) -> RequestStatus:
    """The request's timeline. Another user's request is 'not found', not 'forbidden'."""
    status = await request_status(ingest, request_id, who)
    if status is None:
        raise errors.not_found("request_not_found", f"No request {request_id} of yours exists.")
    return status
