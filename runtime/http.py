"""HTTP plumbing for FastAPI services: the one error shape, request ids, body limits, security
headers, metrics, health and readiness.

Every error a client sees is `{"code": "<stable_code>", "message": "<human text>",
"request_id": "<id>", "details": ...}` with the matching status.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime import metrics, tracing
from runtime.logs import request_id_var
from schemas.base import new_request_id
from schemas.jsonlimits import JSONLimitError, loads_strict

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
ReadinessCheck = Callable[[], Awaitable[bool]]


class ApiError(Exception):
    """An error meant for the client, with its status and stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


def request_id_of(request: Request) -> str:
    """The request id the middleware minted."""
    return str(getattr(request.state, "request_id", "") or new_request_id())


def correlation_id_of(request: Request) -> str | None:
    """The client's own `X-Request-ID`, when it sent a safe one: logged and echoed, never a key."""
    found = getattr(request.state, "correlation_id", None)
    return str(found) if found else None


def error_body(request_id: str, code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error shape."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        body["details"] = details
    return body


def error_response(request: Request, exc: ApiError) -> JSONResponse:
    """An ApiError as a response."""
    body = error_body(request_id_of(request), exc.code, exc.message, exc.details)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        out.append({"field": ".".join(loc) or "(body)", "error": err.get("msg", "invalid")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the one shape: ours, validation (422) and routing (404/405)."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = _field_errors(exc)
        text = "; ".join(f"{f['field']}: {f['error']}" for f in fields[:5])
        err = ApiError(422, "invalid_request", f"The request is not valid: {text}", details=fields)
        return error_response(request, err)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, ApiError(exc.status_code, code, str(exc.detail)))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class EdgeMiddleware:
    """The edge of every request, as one pure-ASGI layer (cheaper than three BaseHTTPMiddleware
    layers on the latency-critical path):

    - the request id is minted here, always: it keys the request everywhere (envelope id, the
      enqueuer's one clone, the router's one model call), so a client never chooses it. A
      client's own safe `X-Request-ID` is kept only as its correlation id, echoed back in
      `X-Correlation-ID`;
    - the body is read whole, whatever the transfer encoding, up to `max_body` (else 413), and a
      JSON body must meet schemas/jsonlimits.py (else 422): what passes, every worker decodes;
    - every response says `X-Content-Type-Options: nosniff`; one to a request that carries a
      credential says `Cache-Control: no-store`;
    - HTTP metrics.
    """

    def __init__(self, app: ASGIApp, *, service: str, max_body: int) -> None:
        self.app, self.service, self.max_body = app, service, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = new_request_id()
        sent = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        extra = list(_ALWAYS)
        if _SAFE_ID.fullmatch(sent):
            state["correlation_id"] = sent
            extra.append((CORRELATION_ID_HEADER.encode(), sent.encode()))
        if _carries_credential(scope, headers):
            extra.append((b"cache-control", b"no-store"))
        started = time.perf_counter()
        status_holder = [500]

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                own = {name.lower() for name, _ in message.get("headers", [])}
                # read now: a retry with an Idempotency-Key answers under its first request id
                final = str(state.get("request_id", rid)).encode()
                message.setdefault("headers", []).extend(
                    pair
                    for pair in [(REQUEST_ID_HEADER.encode(), final), *extra]
                    if pair[0] not in own
                )
            await send(message)

        request_id_var.set(rid)
        with tracing.span(
            f"{scope['method']} {scope.get('path', '')}",
            kind=tracing.SERVER,
            parent=tracing.extract_http(headers),
        ) as span:
            try:
                if scope["method"] in _WITH_BODY:
                    receive = await self._read_body(headers, receive)
            except ApiError as exc:
                body = error_body(rid, exc.code, exc.message, exc.details)
                error = JSONResponse(body, status_code=exc.status)
                await error(scope, _empty_receive, send_wrapped)
            else:
                await self.app(scope, receive, send_wrapped)
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            if span is not None:
                _describe(span, scope, path, status_holder[0], str(state.get("request_id", rid)))
        metrics.HTTP_REQUESTS.labels(self.service, path, scope["method"], status_holder[0]).inc()
        metrics.HTTP_LATENCY.labels(self.service, path).observe(time.perf_counter() - started)

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> Receive:
        """The whole body, checked; a receive that hands it to the app in one message."""
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise self._too_large()
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return _replay(b"", receive, message)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(headers.get(b"content-type")):
            try:
                loads_strict(body)
            except JSONLimitError as exc:
                raise ApiError(
                    422,
                    "invalid_request",
                    f"The request body is not valid: {exc}.",
                    details=[{"field": "(body)", "error": str(exc)}],
                ) from exc
        return _replay(body, receive, None)

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            "body_too_large",
            f"The request body is larger than the limit of {self.max_body} bytes.",
        )


def _describe(span: Any, scope: Scope, route: str, status: int, request_id: str) -> None:
    """The HTTP span's name and attributes (OpenTelemetry's HTTP conventions)."""
    span.update_name(f"{scope['method']} {route}")
    span.set_attribute("http.request.method", scope["method"])
    span.set_attribute("http.route", route)
    span.set_attribute("url.path", str(scope.get("path", "")))
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("mlbus.request_id", request_id)
    if status >= 500:
        span.set_status(tracing.Status(tracing.StatusCode.ERROR))


CORRELATION_ID_HEADER = "x-correlation-id"
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ALWAYS = ((b"x-content-type-options", b"nosniff"),)


def _carries_credential(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A bearer token in the header or the query (SSE), or a compatibility route's token in the
    body: the answer is someone's own and no cache may keep it."""
    return (
        b"authorization" in headers
        or b"access_token=" in scope.get("query_string", b"")
        or str(scope.get("path", "")).startswith("/clearml/")
    )


def _is_json(content_type: bytes | None) -> bool:
    """What FastAPI parses as JSON: no content type, or `*/json` and `*/*+json`."""
    if not content_type:
        return True
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind.endswith((b"/json", b"+json"))


def _replay(body: bytes, receive: Receive, last: Message | None) -> Receive:
    """A receive that gives the app the body read already, then the client's own messages
    (a disconnect, for a streaming response)."""
    pending: list[Message] = [
        last if last is not None else {"type": "http.request", "body": body, "more_body": False}
    ]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


#: How long one readiness check may take before its dependency counts as down. A server that is
#: away makes its client wait its own timeouts (MongoDB's server selection: 5 s; a paused broker:
#: longer), and a probe is given about a second: a check that waits past this says "down".
CHECK_TIMEOUT_S = 2.0


async def _check(check: ReadinessCheck, timeout_s: float) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return False


def install_probes(
    app: FastAPI, checks: dict[str, ReadinessCheck], *, timeout_s: float = CHECK_TIMEOUT_S
) -> None:
    """`/healthz` (the process is up), `/readyz` (every dependency answers), `/metrics`. The
    checks run together, each bounded by `timeout_s`: `/readyz` answers within it, whatever is
    away."""

    @app.get("/healthz", tags=["probes"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], include_in_schema=False)
    async def readyz() -> Response:
        done = await asyncio.gather(*(_check(check, timeout_s) for check in checks.values()))
        results = dict(zip(checks, done, strict=True))
        ready = all(results.values())
        body = {"ready": ready, "checks": {k: "ok" if v else "down" for k, v in results.items()}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
