"""Bearer tokens: JWTs verified against the issuer's JWKS (RS256), with issuer, audience,
expiry and not-before checked under a small clock skew.

The keys are fetched once, cached, and fetched again when a token names an unknown key id
(rate-limited, so garbage key ids cannot make us hammer the issuer: a token with a new key id
waits for the next allowed fetch, at most 10 s, and every request that waits shares it). When
the issuer cannot be reached, a token with a key already known keeps working, and one with a
new key is 503 `identity_unavailable`, not 401: the token may be fine. A token that verified is
remembered until its own expiry (bounded LRU): Node-RED flows send the same token for minutes,
and an RSA verification per request is the largest cost of authentication. Expiry is checked
on every hit, so a remembered token is exactly as valid as a re-verified one.

Only access tokens pass: a Keycloak ID or refresh token (`typ` other than `Bearer`) is refused.
Who the caller is comes from `preferred_username`, what they may do from their roles (roles.py).
Tokens are never logged, stored (beyond this process's memory) or echoed in an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import httpx
import jwt
from jwt.algorithms import RSAAlgorithm

from services.ingest.errors import identity_unavailable, unauthorized
from services.ingest.roles import ADMIN, OPERATOR, RoleMap
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)
_MIN_REFRESH_S = 10.0
_REMEMBERED = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user name, the token's roles that count (Keycloak's names, e.g.
    `AreaManager`), and the mlbus roles they grant (`admin`, `operator`, `user`)."""

    user: str
    roles: frozenset[str]
    is_admin: bool
    grants: frozenset[str] = frozenset({"user"})
    #: When the token stops being accepted (its `exp` plus the leeway), in epoch seconds: what
    #: outlives one request (a notification stream) ends then.
    expires_at: float = float("inf")

    @property
    def is_operator(self) -> bool:
        """Sees every notification and the resource state (admins do too)."""
        return self.is_admin or OPERATOR in self.grants


class JwksVerifier:
    """Verifies access tokens against a JWKS URL."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str | None,
        leeway_s: int,
        admin_roles: tuple[str, ...] = (),
        http: httpx.AsyncClient,
        role_map: RoleMap | None = None,
    ) -> None:
        self._url, self._issuer, self._audience = jwks_url, issuer, audience
        self._leeway, self._http = leeway_s, http
        self._roles = role_map or RoleMap.of(extra_admin_roles=admin_roles)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._fetching: asyncio.Future[None] | None = None
        self._unreachable = False
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: IngestSettings, http: httpx.AsyncClient) -> JwksVerifier:
        """The verifier that the settings describe (issuer, audience, skew, role mapping)."""
        return cls(
            jwks_url=settings.jwks_url,
            issuer=settings.issuer,
            audience=settings.audience,
            leeway_s=settings.leeway_s,
            http=http,
            role_map=RoleMap.of(settings.role_map, settings.role_clients, settings.admin_roles),
        )

    async def verify(self, token: str) -> Principal:
        """The token's principal, or a 401 ApiError saying why not."""
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if time.time() < expires + self._leeway:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > _REMEMBERED:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized("The access token is malformed.") from exc
        if header.get("alg") != "RS256":
            raise unauthorized("The access token must be signed with RS256.")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"verify_aud": self._audience is not None, "require": ["exp", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The access token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise unauthorized("The access token is not valid yet.") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"The access token was rejected: {exc}.") from exc
        expires = float(claims["exp"])
        return replace(self._principal(claims), expires_at=expires + self._leeway), expires

    def _principal(self, claims: dict[str, Any]) -> Principal:
        if claims.get("typ", "Bearer") != "Bearer":
            raise unauthorized("The token is not an access token.")
        user = claims.get("preferred_username") or claims.get("username") or claims.get("sub")
        if not user or not isinstance(user, str):
            raise unauthorized("The access token names no user.")
        roles = self._roles.token_roles(claims)
        grants = self._roles.grants_of(roles)
        return Principal(user, roles, ADMIN in grants, grants)

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys:
            await self._refresh_if_due()
        if kid not in self._keys:
            if self._unreachable:
                raise identity_unavailable()
            raise unauthorized("The access token was signed with an unknown key.")
        return self._keys[kid]

    async def _refresh_if_due(self) -> None:
        """One fetch at a time, and at most one per `_MIN_REFRESH_S`: a token with a key id not
        seen waits for the next fetch (at most that long) and every token of the burst shares
        it. Refusing it at once instead would say 401 for a key the issuer may have added since
        the last fetch, and would never notice that the issuer went away meanwhile (a 401 where
        the answer is 503 `identity_unavailable`)."""
        if self._fetching is None:
            wait_s = self._fetched_at + _MIN_REFRESH_S - time.monotonic()
            self._fetching = asyncio.ensure_future(self._refresh(max(0.0, wait_s)))
            self._fetching.add_done_callback(self._fetched)
        await asyncio.shield(self._fetching)

    def _fetched(self, _: asyncio.Future[None]) -> None:
        self._fetching = None

    async def _refresh(self, after_s: float = 0.0) -> None:
        if after_s > 0:
            await asyncio.sleep(after_s)
        self._fetched_at = time.monotonic()
        try:
            response = await self._http.get(self._url, timeout=5.0)
            response.raise_for_status()
            keys = response.json().get("keys", [])
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch JWKS from %s: %s", self._url, exc)
            self._unreachable = True
            return
        self._unreachable = False
        self._keys = {
            k["kid"]: RSAAlgorithm.from_jwk(json.dumps(k))
            for k in keys
            if k.get("kty") == "RSA" and "kid" in k
        }

    async def ready(self) -> bool:
        """True once keys are loaded (fetches them if not)."""
        if not self._keys:
            await self._refresh()
        return bool(self._keys)
