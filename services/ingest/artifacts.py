"""`GET /v1/requests/{request_id}/artifacts/{name}`: a completed run's artifact, streamed from
ClearML's file server.

The same privacy rules as the request: its requester and admins only; anyone else is told the
request does not exist. The artifact's real URI (kept by the monitor in `result_uris`, shown to
admins on the request) is fetched only when it lies under the configured file server, so a URI
recorded on a task can never make ingest call anywhere else; its address never reaches the
requester, not even in an error.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path
from fastapi.responses import StreamingResponse

from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, bearer_principal, ingest_of
from services.ingest.store import StoreUnavailable

router = APIRouter()
IngestDep = Annotated[Ingest, Depends(ingest_of)]
User = Annotated[Principal, Depends(bearer_principal)]
ArtifactName = Annotated[
    str, Path(description="The artifact's name.", pattern=r"^[^/\x00-\x1f]{1,255}$")
]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@router.get(
    "/v1/requests/{request_id}/artifacts/{name}",
    tags=["requests"],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_artifact(
    request_id: str, name: ArtifactName, ingest: IngestDep, who: User
) -> StreamingResponse:
    """An artifact of the request's run, as a download."""
    try:
        doc = await ingest.store.enqueue_log(request_id)
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
    if doc is None or (doc.get("user") != who.user and not who.is_admin):
        raise errors.not_found("request_not_found", f"No request {request_id} of yours exists.")
    uri = (doc.get("result_uris") or {}).get(name)
    if not isinstance(uri, str):
        raise errors.not_found(
            "artifact_not_found", f"The request's run has no artifact named {name!r}."
        )
    base = ingest.settings.clearml_files_host.rstrip("/") + "/"
    if not uri.startswith(base):
        raise errors.artifact_unavailable("it is not on the cluster's file server")
    return await _stream(uri, name, _content_type(doc, name), ingest.settings.artifact_timeout_s)


def _content_type(doc: dict[str, Any], name: str) -> str:
    for artifact in (doc.get("results") or {}).get("artifacts") or []:
        kind = artifact.get("type") if isinstance(artifact, dict) else None
        if artifact.get("name") == name and isinstance(kind, str) and "/" in kind:
            return kind
    return "application/octet-stream"


async def _stream(uri: str, name: str, content_type: str, timeout_s: float) -> StreamingResponse:
    client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
    try:
        response = await client.send(client.build_request("GET", uri), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise errors.artifact_unavailable("the file server did not answer") from exc
    if response.status_code != 200:
        status = response.status_code
        await response.aclose()
        await client.aclose()
        if status == 404:
            raise errors.not_found(
                "artifact_not_found", f"The artifact {name!r} is no longer on the cluster."
            )
        raise errors.artifact_unavailable(f"the file server answered {status}")

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        finally:
            await response.aclose()
            await client.aclose()

    filename = _UNSAFE.sub("_", uri.rsplit("/", 1)[-1]) or "artifact"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if length := response.headers.get("content-length"):
        headers["Content-Length"] = length
    return StreamingResponse(body(), media_type=content_type, headers=headers)
