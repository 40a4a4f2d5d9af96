"""The serving-node adapter: `POST {base_url}/{endpoint}[/{version}]` over one pooled HTTP
transport (aiohttp in production, see `transport.py`), and `GET /health` where the node has it.
Transport failures arrive already in the error tree; here the answer's JSON is read."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import orjson

from runtime import tracing
from schemas.base import JSONValue
from services.inference_router.errors import ModelFailed
from services.inference_router.transport import HttpTransport, HttpxTransport

REQUEST_ID_HEADER = "X-Request-ID"
_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ModelAnswer:
    """What a replica answered: its status, its JSON body, and the time the call took."""

    status: int
    body: JSONValue
    model_ms: float


def serve_url(base_url: str, endpoint: str, version: str | None) -> str:
    """The ClearML Serving URL of an endpoint on one replica."""
    url = f"{base_url.rstrip('/')}/{endpoint}"
    return f"{url}/{version}" if version else url


def health_url(base_url: str) -> str:
    """`/health` sits beside `/serve`, at the node's root."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/serve")
    return f"{root}/health"


def _dumps(body: JSONValue) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson stops at 64-bit integers; the standard library does not
        return json.dumps(body, separators=(",", ":")).encode()


def _loads(content: bytes) -> JSONValue:
    try:
        parsed: JSONValue = orjson.loads(content)
    except orjson.JSONDecodeError:
        parsed = json.loads(content)  # integers past 64 bits; raises if it is not JSON at all
    return parsed


def _parse(status: int, content: bytes) -> JSONValue:
    if not content:
        return None
    try:
        return _loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if 200 <= status < 300:
            raise ModelFailed("the model's answer is not JSON") from exc
        return content.decode(errors="replace")


class ModelClient:
    """Calls models on replicas (`http`: a transport, or an httpx client for tests)."""

    def __init__(self, http: HttpTransport | httpx.AsyncClient, connect_timeout_s: float) -> None:
        self._http = HttpxTransport(http) if isinstance(http, httpx.AsyncClient) else http
        self._connect = connect_timeout_s

    async def call(
        self,
        base_url: str,
        endpoint: str,
        version: str | None,
        *,
        body: JSONValue,
        request_id: str,
        budget_s: float,
    ) -> ModelAnswer:
        """One call within `budget_s`; any HTTP status comes back as an answer."""
        started = time.perf_counter()
        attributes = {"http.request.method": "POST", "mlbus.endpoint": endpoint}
        with tracing.span(f"model {endpoint}", kind=tracing.CLIENT, attributes=attributes) as span:
            status, content = await self._http.post(
                serve_url(base_url, endpoint, version),
                _dumps(body),
                {REQUEST_ID_HEADER: request_id},
                budget_s,
                self._connect,
            )
            if span is not None:
                span.set_attribute("http.response.status_code", status)
        model_ms = (time.perf_counter() - started) * 1000
        return ModelAnswer(status, _parse(status, content), model_ms)

    async def healthy(self, base_url: str) -> bool | None:
        """True or False from the node's `/health`; None when the node has none (404)."""
        status = await self._http.get_status(health_url(base_url), _PROBE_TIMEOUT_S)
        if status is None:
            return False
        if status == 404:
            return None
        return 200 <= status < 300
