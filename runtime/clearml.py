"""ClearML REST client, speaking the API as the clearml SDK does (shared/reference/clearml-api.md):
`auth.login` with Basic credentials for a token, then `/v2.23/<service>.<action>` calls with a JSON
body and the Bearer token; the envelope's `meta.result_code` decides success.

Failures are translated at this boundary, so services never see HTTP-library or envelope details:

    RetriableError
    └── ClearMLUnavailable    5xx, 429, timeout, refused connection, not an envelope
        └── ClearMLUnauthorized   401 even after a fresh login (wrong or rotated keys)
    PermanentError
    └── ClearMLRejected       4xx, with the API's code/subcode and words for a flow author

The caller retries ClearMLUnavailable boundedly (the SDK's own default retries for hours).

It runs on aiohttp rather than httpx: under concurrency, httpcore's pool spends time per request
in proportion to requests x connections (profiled: half the enqueuer's CPU at 64 in flight), and
ClearML calls are mlbus's highest-volume outbound traffic.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr

from runtime import metrics, tracing
from runtime.retry import PermanentError, RetriableError
from runtime.settings import WorkerSettings

API = "v2.23"

_USER_WORDS = {
    101: "The task behind this id no longer exists on the cluster; "
    "ask an admin to fix its mapping.",
    110: "The task is in a state that cannot be changed that way ({detail}).",
    701: "The queue does not exist on the cluster.",
    706: "The task is already queued.",
}


class ClearMLUnavailable(RetriableError):
    """ClearML did not answer, or answered 5xx."""


class ClearMLUnauthorized(ClearMLUnavailable):
    """ClearML refused mlbus's own credentials (401, e.g. 22 after keys were rotated). It is the
    cluster's problem, not the request's: retried like an outage, and an operator must act."""

    def __init__(self, subcode: int, api_message: str) -> None:
        super().__init__(f"ClearML 401/{subcode}: {api_message}")
        self.subcode, self.reason = subcode, api_message


class ClearMLRejected(PermanentError):
    """ClearML refused the call (4xx). `user_message` says what happened in a flow author's
    words; `str()` keeps the API's own text for the logs and the dead letter."""

    code = "clearml_rejected"

    def __init__(self, code: int, subcode: int, api_message: str, user_message: str) -> None:
        super().__init__(f"ClearML {code}/{subcode}: {api_message}")
        self.status, self.subcode, self.user_message = code, subcode, user_message


class ClearMLSettings(WorkerSettings):
    """A worker that calls ClearML: where its API is and how to log in. These are connection
    settings, so they also fall back to `MLBUS_` (`MLBUS_CLEARML_API_HOST`)."""

    shared_fields: ClassVar[frozenset[str]] = WorkerSettings.shared_fields | {
        "clearml_api_host",
        "clearml_access_key",
        "clearml_secret_key",
        "clearml_timeout_s",
    }

    clearml_api_host: str = Field(default="http://127.0.0.1:8008", description="ClearML API.")
    clearml_access_key: str = Field(default="mlbus-dev-access", description="API access key.")
    clearml_secret_key: SecretStr = Field(
        default=SecretStr("mlbus-dev-secret"), description="API secret key."
    )
    clearml_timeout_s: float = Field(default=10.0, description="Per-call timeout.")


def open_session(timeout_s: float, connections: int) -> aiohttp.ClientSession:
    """The pooled HTTP session a ClearML client runs on (close it when done)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=connections),
    )


class ClearMLClient:
    """Calls the API with a cached token; re-logs in once on 401, like the SDK."""

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: ClearMLSettings) -> ClearMLClient:
        """A client for the configured server."""
        return cls(
            http,
            settings.clearml_api_host,
            settings.clearml_access_key,
            settings.clearml_secret_key.get_secret_value(),
        )

    def __init__(self, http: aiohttp.ClientSession, host: str, access_key: str, secret_key: str):
        self._http, self._host = http, host.rstrip("/")
        self._basic = "Basic " + base64.b64encode(f"{access_key}:{secret_key}".encode()).decode()
        self._token: str | None = None

    async def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """One API call; returns the envelope's `data`."""
        with tracing.span(f"clearml {endpoint}", kind=tracing.CLIENT) as span:
            try:
                data = await self._call(endpoint, body)
            except ClearMLRejected:
                metrics.CLEARML_CALLS.labels(endpoint, "rejected").inc()
                raise
            except ClearMLUnavailable as exc:
                metrics.CLEARML_CALLS.labels(endpoint, "unavailable").inc()
                tracing.failed(span, exc)
                raise
            metrics.CLEARML_CALLS.labels(endpoint, "ok").inc()
            return data

    async def _call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._token is None:
            await self._login()
        status, envelope = await self._send(f"/{API}/{endpoint}", body)
        if status == 401:
            await self._login()
            status, envelope = await self._send(f"/{API}/{endpoint}", body)
        return _data(endpoint, status, envelope)

    async def _login(self) -> None:
        status, envelope = await self._request("GET", "/auth.login", None, self._basic)
        self._token = str(_data("auth.login", status, envelope)["token"])

    async def _send(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        # POST rather than the SDK's GET-with-body: the server accepts any method, and proxies
        # between mlbus and ClearML may drop GET bodies.
        return await self._request("POST", path, body, f"Bearer {self._token}")

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, authorization: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": authorization}
        try:
            async with self._http.request(
                method, f"{self._host}{path}", json=body, headers=headers
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise ClearMLUnavailable(f"{path}: HTTP {response.status}")
                try:
                    return response.status, await response.json(content_type=None)
                except ValueError as exc:
                    raise ClearMLUnavailable(f"{path}: not a ClearML envelope") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClearMLUnavailable(f"{path}: {exc!r}") from exc


def _data(endpoint: str, status: int, envelope: Any) -> dict[str, Any]:
    try:
        meta = envelope["meta"]
    except (KeyError, TypeError) as exc:
        raise ClearMLUnavailable(f"{endpoint}: not a ClearML envelope (HTTP {status})") from exc
    code, sub = int(meta.get("result_code", 0)), int(meta.get("result_subcode", 0))
    if code == 200:
        data: dict[str, Any] = envelope.get("data") or {}
        return data
    message = str(meta.get("result_msg", ""))
    if code == 401:
        raise ClearMLUnauthorized(sub, message)
    words = _USER_WORDS.get(sub, "The cluster refused the request: {detail}.")
    raise ClearMLRejected(code, sub, message, words.format(detail=message))
