"""Bare ASGI plumbing: types, body reading and JSON responses, kept to the minimum per request."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from serving_node.errors import InvalidInputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = (b"content-type", b"application/json")


async def read_body(receive: Receive) -> bytes:
    """The whole request body (one message in the common case)."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def parse_json(body: bytes, content_encoding: bytes | None) -> Any:
    """Decode a JSON body, gzip allowed as in ClearML Serving; ``InvalidInputError`` if not JSON."""
    if content_encoding == b"gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise InvalidInputError(f"request body is not valid gzip: {exc}") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from None


def request_headers(scope: Scope) -> tuple[str | None, bytes | None]:
    """``X-Request-ID`` (decoded) and ``Content-Encoding`` of a request, in one pass."""
    request_id: str | None = None
    encoding: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            request_id = value.decode("latin-1")
        elif name == b"content-encoding":
            encoding = value.lower()
    return request_id, encoding


async def send_json(send: Send, status: int, payload: Any) -> None:
    """Answer with a JSON body."""
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_detail(send: Send, status: int, detail: Any) -> None:
    """Answer with FastAPI's error shape, ``{"detail": ...}``."""
    await send_json(send, status, {"detail": detail})
