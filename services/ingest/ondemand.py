"""On-demand inference routes: publish the request, wait for this instance's reply, answer.

`POST /v1/ondemand` answers `{status: "ok", request_id, output}`; the Node-RED node's
`POST /clearml/serve/ondemand` answers the model's own JSON. Errors keep the project's shape on
both: the model's 4xx is passed through with its detail, a failed or unreachable model is 502,
no answer within the endpoint's timeout is 504.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Annotated

import orjson
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
from services.ingest.deps import Ingest, bearer_principal, ingest_of

router = APIRouter(tags=["ondemand"])


async def _ingest(request: Request) -> Ingest:
    """`ingest_of` as a coroutine: FastAPI runs a plain-function dependency in its thread pool,
    a thread hand-off per call that cost ~7% of ingest's CPU on this path."""
    return ingest_of(request)


IngestDep = Annotated[Ingest, Depends(_ingest)]
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


def _json(content: JSONValue, status: int = 200) -> Response:
    """A JSON response serialised once by orjson (FastAPI's response_model path validates the
    reply again and encodes it with the standard library)."""
    try:
        raw = orjson.dumps(content)
    except TypeError:  # orjson stops at 64-bit integers
        raw = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(raw, status_code=status, media_type="application/json")


@router.post("/v1/ondemand", response_model=OnDemandReply)
async def ondemand(
    body: OnDemandRequest, request: Request, ingest: IngestDep, who: User
) -> Response:
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
    # The shape of OnDemandReply (kept above for the OpenAPI document), built directly.
    return _json({"status": "ok", "request_id": request.state.request_id, "output": reply.output})


@router.post("/clearml/serve/ondemand", tags=["compatibility"])
async def compat_ondemand(
    body: CompatOnDemandRequest, request: Request, ingest: IngestDep
) -> Response:
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
    return _json(reply.output, reply.http_status)
