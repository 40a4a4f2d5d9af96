"""The request id: a client's own is kept only when it is a safe key."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from runtime.http import EdgeMiddleware, request_id_of


def app() -> FastAPI:
    api = FastAPI()

    @api.get("/rid")
    async def rid(request: Request) -> str:
        return request_id_of(request)

    api.add_middleware(EdgeMiddleware, service="test", max_body=1024)
    return api


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-DEF_12345678", True),
        ("short", False),  # under 8
        ("a" * 65, False),
        ("abcd..ef", False),  # would be a MongoDB field path
        ("$where-12345", False),
        ("with space 1234", False),
    ],
)
async def test_a_client_request_id_is_kept_only_when_safe(sent: str, kept: bool) -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/rid", headers={"X-Request-ID": sent})
    rid = response.json()
    assert response.headers["x-request-id"] == rid
    assert (rid == sent) is kept
    assert len(rid) >= 8
