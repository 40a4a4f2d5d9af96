"""Ingest against the real Keycloak of deploy/keycloak: tokens from its token endpoint (with and
without Snap4City's trailing slash, password and client-credentials grants) get in with the roles
the realm gives; every kind of bad token gets 401 in the one error shape, and a user on an admin
path gets 403.

Keycloak issues some bad tokens itself: an expired one (a client whose tokens live 5 s), one for
another issuer (asked for through `localhost`, which Keycloak puts in `iss`), one without mlbus'
audience (a client without the audience mapper), ID tokens. The others are derived from a real
token, each said where it is made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from mlbus.devissuer import SigningKey
from mlbus.servers.keycloak import (
    KeycloakServer,
    TokenError,
    client_credentials_grant,
    password_grant,
)
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.conftest import Bus
from tests.support import ThreadedServer, eventually


@pytest.fixture
async def ingest_kc(bus: Bus, keycloak: KeycloakServer) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest trusting the real realm, checking mlbus' audience, with 1 s of clock skew."""
    settings = IngestSettings(
        **bus.settings(),
        jwks_url=keycloak.jwks_url,
        issuer=keycloak.realm_url,
        audience="mlbus",
        leeway_s=1,
        instance="ingest-test",
    )
    server = ThreadedServer(create_app(settings), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)


def login(keycloak: KeycloakServer, user: str, **kwargs: Any) -> str:
    """A real token by the password grant (the dev realm's passwords are the user names)."""
    return password_grant(keycloak.realm_url, user, user, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def who_am_i(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """A user path: an unknown request id is 404 for an authenticated caller, 401 otherwise."""
    headers = bearer(token) if token else {}
    return await client.get(f"/v1/requests/{uuid.uuid4().hex}", headers=headers)


def assert_unauthorized(response: httpx.Response, token: str) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "unauthorized"
    assert body["request_id"]
    assert response.headers["www-authenticate"] == "Bearer"
    if token:
        assert token not in response.text  # never echoed
        assert token.split(".")[1] not in response.text
    return str(body["message"])


async def test_password_grant_tokens_work_at_both_token_urls(
    keycloak: KeycloakServer, ingest_kc: httpx.AsyncClient
) -> None:
    plain = login(keycloak, "alice")
    slashed = login(keycloak, "alice", trailing_slash=True)  # Snap4City's nodes add the slash
    for token in (plain, slashed):
        response = await who_am_i(ingest_kc, token)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "request_not_found"
    # The Node-RED node's own call, token in the body: authenticated, then the unknown task.
    compat = await ingest_kc.post(
        "/clearml/serve/enqueue_task",
        json={"access_token": slashed, "task_id": "0" * 64, "queue": None, "params": {}},
    )
    assert compat.status_code == 404, compat.text
    assert compat.json()["code"] == "task_not_found"
    with pytest.raises(TokenError, match="invalid_grant"):
        password_grant(keycloak.realm_url, "alice", "wrong", trailing_slash=True)


async def test_a_client_credentials_token_works(
    keycloak: KeycloakServer, ingest_kc: httpx.AsyncClient
) -> None:
    token = client_credentials_grant(keycloak.realm_url, "mlbus-service", "mlbus-service-secret")
    assert (await who_am_i(ingest_kc, token)).status_code == 404
    with pytest.raises(TokenError, match="unauthorized_client"):
        client_credentials_grant(keycloak.realm_url, "mlbus-service", "not-the-secret")


async def test_admins_by_realm_or_client_role_may_use_admin_paths_and_users_may_not(
    keycloak: KeycloakServer, ingest_kc: httpx.AsyncClient
) -> None:
    for admin in ("admin", "tooladmin", "clientadmin"):  # RootAdmin, ToolAdmin, mlbus' ToolAdmin
        listed = await ingest_kc.get(
            "/v1/admin/task-mappings", headers=bearer(login(keycloak, admin))
        )
        assert listed.status_code == 200, (admin, listed.text)
    for user in ("alice", "operator"):  # Manager, AreaManager
        refused = await ingest_kc.get(
            "/v1/admin/task-mappings", headers=bearer(login(keycloak, user))
        )
        assert refused.status_code == 403, (user, refused.text)
        assert refused.json()["code"] == "admin_required"
        assert refused.json()["request_id"]


async def test_an_expired_keycloak_token_is_refused(
    keycloak: KeycloakServer, ingest_kc: httpx.AsyncClient
) -> None:
    """A real token from the client whose access tokens live 5 s; ingest allows 1 s of skew."""
    token = login(keycloak, "bob", client_id="mlbus-short-lived")
    assert (await who_am_i(ingest_kc, token)).status_code == 404  # valid (and now remembered)

    async def refused() -> httpx.Response | None:
        response = await who_am_i(ingest_kc, token)
        return response if response.status_code == 401 else None

    expired = await eventually(refused, timeout_s=30, what="the token to expire")
    assert "expired" in assert_unauthorized(expired, token)


async def test_bad_tokens_are_refused_with_401(
    keycloak: KeycloakServer, ingest_kc: httpx.AsyncClient
) -> None:
    cases = bad_tokens(keycloak)
    messages: dict[str, str] = {}
    for name, token in cases.items():
        response = await who_am_i(ingest_kc, token)
        assert response.status_code == 401, (name, response.text)
        messages[name] = assert_unauthorized(response, token)
    assert "Authorization header" in messages["no token"]
    assert "not valid yet" in messages["not yet valid"]
    assert "issuer" in messages["wrong issuer"].lower()
    assert "aud" in messages["wrong audience"]
    assert "RS256" in messages["alg none"]
    assert "RS256" in messages["HS256 with the public key"]
    assert "unknown key" in messages["unknown key id"]
    for name in ("tampered claims", "bad signature"):
        assert "signature" in messages[name].lower(), messages[name]


def bad_tokens(keycloak: KeycloakServer) -> dict[str, str]:
    real = login(keycloak, "alice")
    header, claims = jwt.get_unverified_header(real), _claims(real)
    now = int(time.time())
    head, body, signature = real.split(".")
    return {
        "no token": "",
        # Keycloak sets no `nbf`: the real claims with one in the future, signed by the realm's
        # own key (KeycloakServer gives it the key), under the real key id.
        "not yet valid": _rs256({**claims, "nbf": now + 300}, header, keycloak),
        # Real tokens: Keycloak names the issuer after the host it was asked through, and the
        # client `other-app` has no audience mapper.
        "wrong issuer": password_grant(
            keycloak.realm_url.replace("127.0.0.1", "localhost"), "alice", "alice"
        ),
        "wrong audience": login(keycloak, "alice", client_id="other-app"),
        "ID token": _id_token(keycloak),
        # Derived: the real token's claims made admin, under the real signature.
        "tampered claims": ".".join(
            [head, _b64(json.dumps({**claims, "roles": ["RootAdmin"]}).encode()), signature]
        ),
        "bad signature": ".".join(
            [head, body, signature[:-6] + ("AAAAAA" if signature[-6:] != "AAAAAA" else "BBBBBB")]
        ),
        "alg none": ".".join([_b64(json.dumps({**header, "alg": "none"}).encode()), body, ""]),
        "HS256 with the public key": _hs256_with_public_key(claims, header, keycloak),
        # Derived: the real claims signed by a key the realm never had.
        "unknown key id": SigningKey.generate().sign(
            claims["iss"], "alice", ["RootAdmin"], aud="mlbus"
        ),
    }


def _id_token(keycloak: KeycloakServer) -> str:
    """A real ID token (typ ID, audience the client): not an access token."""
    form = {
        "grant_type": "password",
        "client_id": "nodered-iotedge",
        "username": "alice",
        "password": "alice",
        "scope": "openid",
    }
    response = httpx.post(f"{keycloak.realm_url}/protocol/openid-connect/token", data=form)
    response.raise_for_status()
    return str(response.json()["id_token"])


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rs256(claims: dict[str, Any], header: dict[str, Any], keycloak: KeycloakServer) -> str:
    assert keycloak.signing_key is not None
    return jwt.encode(claims, keycloak.signing_key.private, algorithm="RS256", headers=header)


def _hs256_with_public_key(
    claims: dict[str, Any], header: dict[str, Any], keycloak: KeycloakServer
) -> str:
    """The classic confusion: the realm's public key (as its JWKS publishes it) as HMAC secret."""
    jwks = httpx.get(keycloak.jwks_url).json()["keys"]
    jwk = next(k for k in jwks if k["kid"] == header["kid"])
    public = RSAAlgorithm.from_jwk(json.dumps(jwk))
    pem = public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing = (
        _b64(json.dumps({**header, "alg": "HS256"}).encode())
        + "."
        + _b64(json.dumps(claims).encode())
    )
    return signing + "." + _b64(hmac.new(pem, signing.encode(), hashlib.sha256).digest())


async def test_dev_issuer_tokens_have_keycloaks_shape(keycloak: KeycloakServer) -> None:
    """The tests that take `issuer` see what the real realm issues, in every claim mlbus reads."""
    real = _claims(login(keycloak, "alice"))
    dev = _claims(SigningKey.generate().sign(real["iss"], "alice", ["Manager"]))
    for claim in ("iss", "aud", "typ", "azp", "preferred_username", "realm_access", "roles"):
        assert dev[claim] == real[claim], claim
    assert set(dev) - {"sub", "jti"} <= set(real)
    assert "nbf" not in real
