"""ClearML REST client, speaking the API as the clearml SDK does (shared/reference/clearml-api.md):
`auth.login` with Basic credentials for a token, then `/v2.23/<service>.<action>` calls with a JSON
body and the Bearer token; the envelope's `meta.result_code` decides success.

Failures are translated at this boundary, so services never see httpx or envelope details:

    RetriableError
    └── ClearMLUnavailable    5xx, 429, timeout, refused connection, not an envelope
    PermanentError
    └── ClearMLRejected       4xx, with the API's code/subcode and words for a flow author

The caller retries ClearMLUnavailable boundedly (the SDK's own default retries for hours).
"""

from __future__ import annotations

from typing import Any

import httpx

from runtime.retry import PermanentError, RetriableError

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


class ClearMLRejected(PermanentError):
    """ClearML refused the call (4xx). `user_message` says what happened in a flow author's
    words; `str()` keeps the API's own text for the logs and the dead letter."""

    code = "clearml_rejected"

    def __init__(self, code: int, subcode: int, api_message: str, user_message: str) -> None:
        super().__init__(f"ClearML {code}/{subcode}: {api_message}")
        self.status, self.subcode, self.user_message = code, subcode, user_message


class ClearMLClient:
    """Calls the API with a cached token; re-logs in once on 401, like the SDK."""

    def __init__(self, http: httpx.AsyncClient, host: str, access_key: str, secret_key: str):
        self._http, self._host = http, host.rstrip("/")
        self._auth = (access_key, secret_key)
        self._token: str | None = None

    async def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """One API call; returns the envelope's `data`."""
        if self._token is None:
            await self._login()
        response = await self._send(f"/{API}/{endpoint}", body)
        if response.status_code == 401:
            await self._login()
            response = await self._send(f"/{API}/{endpoint}", body)
        return _data(endpoint, response)

    async def _login(self) -> None:
        try:
            response = await self._http.get(f"{self._host}/auth.login", auth=self._auth)
        except httpx.HTTPError as exc:
            raise ClearMLUnavailable(f"auth.login: {exc!r}") from exc
        self._token = str(_data("auth.login", response)["token"])

    async def _send(self, path: str, body: dict[str, Any]) -> httpx.Response:
        # POST rather than the SDK's GET-with-body: the server accepts any method, and proxies
        # between mlbus and ClearML may drop GET bodies.
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            return await self._http.post(f"{self._host}{path}", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ClearMLUnavailable(f"{path}: {exc!r}") from exc


def _data(endpoint: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 500 or response.status_code == 429:
        raise ClearMLUnavailable(f"{endpoint}: HTTP {response.status_code}")
    try:
        envelope = response.json()
        meta = envelope["meta"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ClearMLUnavailable(f"{endpoint}: not a ClearML envelope") from exc
    code, sub = int(meta.get("result_code", 0)), int(meta.get("result_subcode", 0))
    if code == 200:
        data: dict[str, Any] = envelope.get("data") or {}
        return data
    message = str(meta.get("result_msg", ""))
    words = _USER_WORDS.get(sub, "The cluster refused the request: {detail}.")
    raise ClearMLRejected(code, sub, message, words.format(detail=message))
