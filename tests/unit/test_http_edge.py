"""The HTTP edge: ingest mints every request id, reads every body whole under one limit whatever
its transfer encoding, holds JSON to the codec's limits, and sets the security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from runtime.http import EdgeMiddleware, install_error_handlers, request_id_of
from schemas.jsonlimits import MAX_DEPTH

LIMIT = 4096


def app() -> FastAPI:
    api = FastAPI()
    install_error_handlers(api)

    @api.get("/rid")
    async def rid(request: Request) -> str:
        return request_id_of(request)

    @api.post("/echo")
    async def echo(request: Request) -> object:
        return {"rid": request_id_of(request), "body": await request.json()}

    api.add_middleware(EdgeMiddleware, service="test", max_body=LIMIT)
    return api


async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("sent", ["abc-DEF_12345678", "short", "a" * 65, "$where-12345", None])
async def test_the_request_id_is_always_minted_and_a_client_id_is_only_echoed(
    sent: str | None,
) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}
    first = await call("GET", "/rid", headers=headers)
    second = await call("GET", "/rid", headers=headers)
    rid = first.json()
    assert first.headers["x-request-id"] == rid
    assert rid != sent
    assert len(rid) == 32
    assert rid != second.json()  # two requests with one client id: two request ids
    safe = sent is not None and sent.startswith("abc")
    assert first.headers.get("x-correlation-id") == (sent if safe else None)


async def test_every_response_says_nosniff_and_a_credentialed_one_no_store() -> None:
    plain = await call("GET", "/rid")
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in plain.headers
    with_token = await call("GET", "/rid", headers={"Authorization": "Bearer x"})
    assert with_token.headers["cache-control"] == "no-store"
    missing = await call("GET", "/nowhere")  # an error too
    assert missing.headers["x-content-type-options"] == "nosniff"


async def _chunks(total: int) -> AsyncIterator[bytes]:
    yield b'{"input": "'
    for _ in range(total // 1024):
        yield b"x" * 1024
    yield b'"}'


@pytest.mark.parametrize("chunked", [True, False])
async def test_a_body_over_the_limit_is_413_whatever_its_transfer_encoding(chunked: bool) -> None:
    if chunked:  # no Content-Length: the limit must hold while reading
        response = await call("POST", "/echo", content=_chunks(LIMIT * 2))
    else:
        response = await call("POST", "/echo", content=b"{" + b" " * LIMIT * 2 + b"}")
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "body_too_large"
    assert body["request_id"] == response.headers["x-request-id"]


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (nested(MAX_DEPTH + 1), "nesting deeper than 64"),
        (nested(1000), "nesting deeper than 64"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e400}', "too large for a 64-bit float"),
        ('{"a": 9223372036854775808}', "outside the signed 64-bit range"),
        ('{"a": ' + "9" * 900 + "}", "outside the signed 64-bit range"),
        ('{"a": 1,}', "not valid JSON"),
    ],
)
async def test_json_beyond_the_codec_limits_is_422_with_the_error_shape(
    raw: str, says: str
) -> None:
    response = await call(
        "POST", "/echo", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert says in body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_json_at_the_limits_passes() -> None:
    raw = '{"a": ' + nested(MAX_DEPTH - 1) + ', "b": -9223372036854775808, "c": 1e308}'
    response = await call("POST", "/echo", content=raw)
    assert response.status_code == 200, response.text
    assert response.json()["body"]["b"] == -(2**63)
