"""Keycloak, as an OpenID Connect provider: the authorization-code flow with PKCE (S256) for a
confidential client, refresh, and the RP-initiated logout that ends the Keycloak session too.

The ID token comes straight from the token endpoint over the back channel (never through the
browser), so its issuer, audience and nonce are checked but not its signature (OpenID Connect
Core 3.1.3.7: the TLS connection to the token endpoint vouches for it). The access token is
never read here: ingest verifies it on every call and says who it belongs to (`GET /v1/me`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from services.console.errors import ApiUnavailable, SignInFailed
from services.console.settings import ConsoleSettings


@dataclass(frozen=True)
class PendingLogin:
    """What the browser's login must come back with: the state, the nonce, the PKCE verifier."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    started: float


@dataclass(frozen=True)
class Tokens:
    """A token endpoint's answer."""

    access: str
    refresh: str | None
    id_token: str | None
    access_expires_at: float


def new_login(next_path: str) -> PendingLogin:
    """A fresh state, nonce and PKCE verifier (each 256 bits)."""
    return PendingLogin(
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(64),
        next_path,
        time.time(),  # wall time: the login may finish on another copy of the console
    )


def challenge(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Provider:
    """The realm's endpoints (from its discovery document, fetched once) and the client's calls."""

    def __init__(self, settings: ConsoleSettings, http: httpx.AsyncClient) -> None:
        self.settings, self.http = settings, http
        self._config: dict[str, Any] | None = None

    @property
    def redirect_uri(self) -> str:
        """Where Keycloak sends the browser back with the code."""
        return f"{self.settings.public_url.rstrip('/')}/auth/callback"

    async def config(self) -> dict[str, Any]:
        """The discovery document (cached after the first success)."""
        if self._config is None:
            url = f"{self.settings.issuer.rstrip('/')}/.well-known/openid-configuration"
            try:
                response = await self.http.get(url, timeout=self.settings.api_timeout_s)
            except httpx.HTTPError as exc:
                raise ApiUnavailable(f"The identity provider did not answer: {exc}") from exc
            if response.status_code != 200:
                raise ApiUnavailable(f"The identity provider answered {response.status_code}.")
            self._config = response.json()
        return self._config

    async def authorize_url(self, login: PendingLogin) -> str:
        """Keycloak's login page for this pending login."""
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": challenge(login.verifier),
            "code_challenge_method": "S256",
        }
        return f"{(await self.config())['authorization_endpoint']}?{urlencode(query)}"

    async def exchange(self, code: str, login: PendingLogin) -> Tokens:
        """The code for tokens (with the PKCE verifier and the client's secret)."""
        tokens = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": login.verifier,
            }
        )
        claims = _unverified_claims(tokens.id_token)
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if (
            claims.get("nonce") != login.nonce
            or claims.get("iss") != self.settings.issuer.rstrip("/")
            or self.settings.client_id not in audiences
        ):
            raise SignInFailed("The identity provider's answer does not match this sign-in.")
        return tokens

    async def refresh(self, refresh_token: str) -> Tokens:
        """New tokens from a refresh token (SignInFailed when the Keycloak session ended)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def logout_url(self, id_token: str | None) -> str:
        """Keycloak's end-session endpoint, coming back to the console's start page."""
        query = {
            "client_id": self.settings.client_id,
            "post_logout_redirect_uri": f"{self.settings.public_url.rstrip('/')}/",
        }
        if id_token:
            query["id_token_hint"] = id_token
        return f"{(await self.config())['end_session_endpoint']}?{urlencode(query)}"

    async def _token(self, form: dict[str, str]) -> Tokens:
        endpoint = (await self.config())["token_endpoint"]
        secret = self.settings.client_secret.get_secret_value()
        try:
            response = await self.http.post(
                endpoint,
                data=form,
                auth=(self.settings.client_id, secret),
                timeout=self.settings.api_timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"The identity provider did not answer: {exc}") from exc
        if response.status_code != 200:
            raise SignInFailed(f"The identity provider refused: {_error_of(response)}")
        body = response.json()
        return Tokens(
            access=str(body["access_token"]),
            refresh=body.get("refresh_token"),
            id_token=body.get("id_token"),
            access_expires_at=time.time() + float(body.get("expires_in", 60)),
        )


def _unverified_claims(token: str | None) -> dict[str, Any]:
    if not token or token.count(".") != 2:
        raise SignInFailed("The identity provider sent no ID token.")
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError as exc:
        raise SignInFailed("The identity provider sent an unreadable ID token.") from exc
    if not isinstance(claims, dict):
        raise SignInFailed("The identity provider sent an unreadable ID token.")
    return claims


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"{body.get('error')}: {body.get('error_description', '')}"
