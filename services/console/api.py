"""Ingest's JSON API, called with the signed-in person's access token: every read and change the
console shows is the API's own (one implementation, with its role and privacy checks); the
console never reads MongoDB or Kafka itself.

An access token about to expire is refreshed first; a refresh Keycloak refuses (its session
ended) ends the console's session too.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from services.console.errors import ApiFailed, ApiUnavailable, NotSignedIn, SignInFailed
from services.console.oidc import Provider
from services.console.sessions import Session, Sessions

_REFRESH_BEFORE_S = 20.0


class IngestApi:
    """Calls to ingest on behalf of a session."""

    def __init__(self, http: httpx.AsyncClient, provider: Provider, sessions: Sessions) -> None:
        self.http, self.provider, self.sessions = http, provider, sessions

    async def token(self, session: Session) -> str:
        """The session's access token, refreshed when it is about to expire."""
        if session.tokens.access_expires_at - time.time() < _REFRESH_BEFORE_S:
            if not session.tokens.refresh:
                raise NotSignedIn("The session has expired.")
            try:
                session.tokens = await self.provider.refresh(session.tokens.refresh)
            except SignInFailed as exc:
                raise NotSignedIn("The session has ended; sign in again.") from exc
            await self.sessions.save_tokens(session)  # for the next page, on any copy
        return session.tokens.access

    async def me(self, access_token: str) -> dict[str, Any]:
        """Who a fresh token belongs to (`GET /v1/me`)."""
        found: dict[str, Any] = await self._json("GET", "/v1/me", access_token)
        return found

    async def get(self, session: Session, path: str, **params: Any) -> Any:
        """GET a JSON resource."""
        return await self._json("GET", path, await self.token(session), params=_clean(params))

    async def post(self, session: Session, path: str, body: Any, **params: Any) -> Any:
        """POST a JSON body."""
        token = await self.token(session)
        return await self._json("POST", path, token, json=body, params=_clean(params))

    async def delete(self, session: Session, path: str) -> None:
        """DELETE a resource."""
        await self._json("DELETE", path, await self.token(session))

    async def _json(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            response = await self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"The API did not answer: {exc}") from exc
        if response.status_code == 401:
            raise NotSignedIn("The API no longer accepts this session's token.")
        if response.status_code >= 400:
            raise _failure(response)
        return response.json() if response.content else None


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the empty ones (a blank filter field means no filter)."""
    return {k: v for k, v in params.items() if v not in (None, "")}


def _failure(response: httpx.Response) -> ApiFailed:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiFailed(
        response.status_code,
        str(body.get("code") or "api_error"),
        str(body.get("message") or f"The API answered {response.status_code}."),
        body.get("details"),
    )
