"""The serving-node adapter: `POST {base_url}/{endpoint}[/{version}]` over one pooled httpx
client, and `GET /health` where the node has it. httpx errors become the error tree's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from schemas.base import JSONValue
from services.inference_router.errors import ModelFailed, ModelTimedOut, ReplicaRefused
from services.inference_router.settings import InferenceRouterSettings

REQUEST_ID_HEADER = "X-Request-ID"
_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ModelAnswer:
    """What a replica answered: its status, its JSON body, and the time the call took."""

    status: int
    body: JSONValue
    model_ms: float


@contextlib.asynccontextmanager
async def open_http(settings: InferenceRouterSettings) -> AsyncIterator[httpx.AsyncClient]:
    """One client for every replica: connections are pooled and kept alive, so a call never
    pays for a TCP handshake once the pool is warm."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=60.0,
    )
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        yield client


def serve_url(base_url: str, endpoint: str, version: str | None) -> str:
    """The ClearML Serving URL of an endpoint on one replica."""
    url = f"{base_url.rstrip('/')}/{endpoint}"
    return f"{url}/{version}" if version else url


def health_url(base_url: str) -> str:
    """`/health` sits beside `/serve`, at the node's root."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/serve")
    return f"{root}/health"


class ModelClient:
    """Calls models on replicas."""

    def __init__(self, http: httpx.AsyncClient, connect_timeout_s: float) -> None:
        self._http, self._connect = http, connect_timeout_s

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
        url = serve_url(base_url, endpoint, version)
        timeout = httpx.Timeout(budget_s, connect=min(self._connect, budget_s))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget_s):
                response = await self._http.post(
                    url, json=body, headers={REQUEST_ID_HEADER: request_id}, timeout=timeout
                )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ReplicaRefused(f"connection failed: {type(exc).__name__}") from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ModelTimedOut(f"no answer within {budget_s:.3f}s") from exc
        except httpx.HTTPError as exc:
            raise ModelFailed(f"call failed: {type(exc).__name__}") from exc
        model_ms = (time.perf_counter() - started) * 1000
        try:
            parsed: JSONValue = response.json() if response.content else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if response.is_success:
                raise ModelFailed("the model's answer is not JSON") from exc
            parsed = response.text
        return ModelAnswer(response.status_code, parsed, model_ms)

    async def healthy(self, base_url: str) -> bool | None:
        """True or False from the node's `/health`; None when the node has none (404)."""
        try:
            response = await self._http.get(health_url(base_url), timeout=_PROBE_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        if response.status_code == 404:
            return None
        return response.is_success
