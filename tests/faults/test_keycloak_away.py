"""Keycloak away (the real server of deploy/keycloak, frozen with SIGSTOP: it accepts connections
and answers none, the slowest way to be away), then back: tokens whose key ingest knows keep
working; a token with a key id ingest has not seen waits for the next fetch of the keys and gets
503 `identity_unavailable`, not 401 (the token may be fine; the issuer cannot say); once
Keycloak is back, that key is judged again (401: Keycloak does not know it) and new tokens pass.
(A stop and a start of Keycloak on the same port and data is `Outage(keycloak, "stop")`; it
costs a minute of start-up on two cores, so the suite uses the pause.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from mlbus.devissuer import SigningKey
from mlbus.servers.keycloak import KeycloakServer, password_grant
from mlbus.servers.outage import Outage
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.conftest import Bus
from tests.support import ThreadedServer

#: A token with a new key id waits at most for the next allowed fetch of the keys (10 s) and
#: that fetch's timeout (5 s).
NEW_KEY_BOUND_S = 10.0 + 5.0 + 2.0


@pytest.fixture
async def ingest_kc(bus: Bus, keycloak: KeycloakServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        **bus.settings(),
        jwks_url=keycloak.jwks_url,
        issuer=keycloak.realm_url,
        audience="mlbus",
        instance="ingest-faults",
    )
    server = ThreadedServer(create_app(settings), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)


async def me(client: httpx.AsyncClient, token: str) -> tuple[int, str | None, float]:
    began = time.monotonic()
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    code = response.json().get("code") if response.status_code != 200 else None
    return response.status_code, code, time.monotonic() - began


async def test_keycloak_away_known_keys_keep_working_new_key_ids_get_503_not_401(
    keycloak: KeycloakServer, ingest_kc: httpx.AsyncClient
) -> None:
    assert keycloak.signing_key is not None
    token = await asyncio.to_thread(password_grant, keycloak.realm_url, "alice", "alice")
    assert (await me(ingest_kc, token))[0] == 200  # the keys are fetched now
    # another token of the realm's own key (its key id as Keycloak names it), never seen by
    # ingest: verified with the cached key
    claims = {**jwt.decode(token, options={"verify_signature": False}), "jti": "another"}
    kid = jwt.get_unverified_header(token)["kid"]
    unseen = jwt.encode(claims, keycloak.signing_key.private, "RS256", headers={"kid": kid})
    new_kid = SigningKey.generate().sign(keycloak.realm_url, "carol", ["Manager"], aud="mlbus")
    outage = Outage(keycloak, "pause")
    await asyncio.to_thread(outage.begin)
    try:
        cached, fresh, rotated = await asyncio.gather(
            me(ingest_kc, token), me(ingest_kc, unseen), me(ingest_kc, new_kid)
        )
    finally:
        await asyncio.to_thread(outage.end)
    assert cached[:2] == (200, None)
    assert fresh[:2] == (200, None)
    assert rotated[:2] == (503, "identity_unavailable"), rotated
    assert rotated[2] < NEW_KEY_BOUND_S, rotated
    # back: the issuer answers again, and does not know that key
    assert (await me(ingest_kc, new_kid))[:2] == (401, "unauthorized")
    token = await asyncio.to_thread(password_grant, keycloak.realm_url, "alice", "alice")
    assert (await me(ingest_kc, token))[0] == 200
