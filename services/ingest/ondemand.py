"""On-demand inference routes: publish the request, wait for this instance's reply, answer.

`POST /v1/ondemand` answers `{status: "ok", request_id, output}`; the Node-RED node's
`POST /clearml/serve/ondemand` answers the model's own JSON. Errors keep the project's shape on
both: the model's 4xx is passed through with its detail, a failed or unreachable model is 502,
no answer within the endpoint's timeout is 504.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from runtime.http import ApiError
from schemas.api import CompatOnDemandRequest, OnDemandReply, OnDemandRequest
from schemas.base import JSONValue, utcnow
from schemas.codec import envelope_for
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.topics import INFERENCE_REQUESTS
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, bearer_principal, ingest_of

router = APIRouter(tags=["ondemand"])
IngestDep = Annotated[Ingest, Depends(ingest_of)]
User = Annotated[Principal, Depends(bearer_principal)]
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
        trace={"ingest": ingest.settings.instance},
    )
    waiter = ingest.replies.expect(rid)  # before publishing: the reply cannot arrive unseen
    try:
        await ingest.inference_bus.publish(INFERENCE_REQUESTS, envelope)
        return await asyncio.wait_for(waiter, mapping.timeout_s + _GRACE_S)
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


@router.post("/v1/ondemand", response_model=OnDemandReply)
async def ondemand(
    body: OnDemandRequest, request: Request, ingest: IngestDep, who: User
) -> OnDemandReply:
    """Call a deployed model and get its answer."""
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
    return OnDemandReply(status="ok", request_id=request.state.request_id, output=reply.output)


@router.post("/clearml/serve/ondemand", tags=["compatibility"])
async def compat_ondemand(
    body: CompatOnDemandRequest, request: Request, ingest: IngestDep
) -> JSONResponse:
    """The Snap4City Node-RED on-demand node's call: token in the body, the model's JSON back."""
    who = await ingest.verifier.verify(body.access_token)
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
    return JSONResponse(reply.output, status_code=reply.http_status)
