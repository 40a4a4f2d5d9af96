"""On-demand inference routes: publish the request, wait for this instance's reply, answer.

`POST /v1/ondemand` answers `{status: "ok", request_id, output}`; the Node-RED node's
`POST /clearml/serve/ondemand` answers the model's own JSON. Errors keep the project's shape on
both: the model's 4xx is passed through with its detail, a failed or unreachable model is 502,
no answer within the endpoint's timeout is 504.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from runtime.http import ApiError
from schemas.api import CompatOnDemandRequest, OnDemandReply, OnDemandRequest
from schemas.base import JSONValue, utcnow
from schemas.codec import envelope_for
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.topics import INFERENCE_REQUESTS
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, bearer_principal, compat_principal, ingest_of, trace_of
from services.ingest.idempotency import Answer, run_once

router = APIRouter(tags=["ondemand"])


async def _ingest(request: Request) -> Ingest:
    """`ingest_of` as a coroutine: FastAPI runs a plain-function dependency in its thread pool,
    a thread hand-off per call that cost ~7% of ingest's CPU on this path."""
    return ingest_of(request)


IngestDep = Annotated[Ingest, Depends(_ingest)]
User = Annotated[Principal, Depends(bearer_principal)]
CompatUser = Annotated[Principal, Depends(compat_principal)]
#: Ingest waits this much longer than the endpoint's timeout, so that the router's own 504
#: (which says where the time went) normally arrives first.
_GRACE_S = 1.0


async def _call(
    ingest: Ingest,
    request: Request,
    who: Principal,
    *,
    machine_id: str,
    endpoint: str,
    version: str | None,
    body: JSONValue,
) -> InferenceReplied:
    await ingest.guard.admit(request, who, "ondemand")
    if await ingest.machines.get(machine_id) is None:
        raise errors.not_found("machine_not_found", f"No serving machine {machine_id} exists.")
    mapping = await ingest.endpoints.get(f"{machine_id}/{endpoint}")
    if mapping is None:
        raise errors.not_found(
            "endpoint_not_found", f"Serving machine {machine_id} has no endpoint '{endpoint}'."
        )
    rid = request.state.request_id
    payload = InferenceRequested(
        machine_id=machine_id,
        endpoint=endpoint,
        version=version,
        input=body,
        reply_to=ingest.replies.topic,
        deadline=utcnow() + timedelta(seconds=mapping.timeout_s),
    )
    envelope = envelope_for(
        INFERENCE_REQUESTS,
        payload,
        id=rid,
        user=who.user,
        trace=trace_of(ingest, request),
    )
    # One deadline for the whole call: the publish and the wait for the reply share it (a slow
    # acknowledgement followed by a full wait made a caller wait the publish bound longer than
    # the endpoint's timeout; found by bench.faults with the broker stopped).
    deadline = asyncio.get_running_loop().time() + mapping.timeout_s + _GRACE_S
    waiter = ingest.replies.expect(rid)  # before publishing: the reply cannot arrive unseen
    try:
        await ingest.inference_bus.publish(INFERENCE_REQUESTS, envelope, within_s=mapping.timeout_s)
        left = deadline - asyncio.get_running_loop().time()
        return await asyncio.wait_for(waiter, max(0.0, left))
    except TimeoutError as exc:
        raise ApiError(
            504, "model_timeout", f"The model did not answer within {mapping.timeout_s:g} s."
        ) from exc
    finally:
        ingest.replies.forget(rid)


def _raise_for(reply: InferenceReplied) -> None:
    if not reply.ok:
        raise ApiError(
            reply.http_status,
            reply.error_code or "model_error",
            reply.message or "The model did not answer.",
        )


def _model_answered(exc: ApiError) -> bool:
    """The model's own 4xx (`model_rejected`) is its answer to this input, kept for a retry with
    the same Idempotency-Key; anything else (a 5xx, a timeout, a refusal by ingest or the
    router) is not, and a retry runs again."""
    return exc.code == "model_rejected"


def _json(content: JSONValue, status: int = 200) -> Answer:
    """The answer, serialised once by orjson when sent (FastAPI's response_model path would
    validate the reply again and encode it with the standard library)."""
    return Answer(status, content)


async def _once(
    ingest: Ingest,
    request: Request,
    who: Principal,
    body: OnDemandRequest | CompatOnDemandRequest,
    answer: Callable[[], Awaitable[Answer]],
) -> Response:
    # A claim runs at most the endpoint's timeout (and the grace); the default when unknown.
    mapping = await ingest.endpoints.get(f"{body.machine_id}/{body.endpoint}")
    running_s = (mapping.timeout_s if mapping is not None else 30.0) + _GRACE_S
    return await run_once(
        ingest.idempotency,
        request,
        who.user,
        body,
        running_s=running_s,
        run=answer,
        keep=_model_answered,
    )


@router.post("/v1/ondemand", response_model=OnDemandReply)
async def ondemand(
    body: OnDemandRequest, request: Request, ingest: IngestDep, who: User
) -> Response:
    """Call a deployed model and get its answer. A retry that must not call the model again
    sends the same `Idempotency-Key` header."""

    async def answer() -> Answer:
        reply = await _call(
            ingest,
            request,
            who,
            machine_id=body.machine_id,
            endpoint=body.endpoint,
            version=body.version,
            body=body.input,
        )
        _raise_for(reply)
        # The shape of OnDemandReply (kept above for the OpenAPI document), built directly.
        return _json(
            {"status": "ok", "request_id": request.state.request_id, "output": reply.output}
        )

    if "idempotency-key" not in request.headers:  # the common case: no claim to read
        return (await answer()).response()
    return await _once(ingest, request, who, body, answer)


@router.post("/clearml/serve/ondemand", tags=["compatibility"])
@router.post("/clearml/serve/ondemand/", include_in_schema=False)  # answered, never redirected
async def compat_ondemand(
    body: CompatOnDemandRequest, request: Request, ingest: IngestDep, who: CompatUser
) -> Response:
    """The Snap4City Node-RED on-demand node's call: token in the body, the model's JSON back."""

    async def answer() -> Answer:
        reply = await _call(
            ingest,
            request,
            who,
            machine_id=body.machine_id,
            endpoint=body.endpoint,
            version=None,
            body=body.params,
        )
        _raise_for(reply)
        return _json(reply.output, reply.http_status)

    if "idempotency-key" not in request.headers:
        return (await answer()).response()
    return await _once(ingest, request, who, body, answer)
