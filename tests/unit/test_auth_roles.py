"""Role mapping: which roles of a Keycloak token count, and what they allow in mlbus (defaults:
Snap4City's), from the settings a production install sets."""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from services.ingest.auth import JwksVerifier, Principal
from services.ingest.roles import RoleMap
from services.ingest.settings import IngestSettings
from tests.unit.test_ingest_auth import ISSUER, KEY, rejected

JWKS = {"keys": [KEY.jwk()]}


def verifier(**settings: object) -> JwksVerifier:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=JWKS))
    return JwksVerifier.from_settings(
        IngestSettings(
            jwks_url="http://keycloak.test/certs",
            issuer=ISSUER,
            **settings,  # type: ignore[arg-type]
        ),
        httpx.AsyncClient(transport=transport),
    )


def signed(realm_roles: list[str], **claims: Any) -> str:
    """A dev-issuer token with `claims` changed (None: left out), re-signed by the same key."""
    body = jwt.decode(KEY.sign(ISSUER, "u", realm_roles), options={"verify_signature": False})
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, KEY.private, algorithm="RS256", headers={"kid": KEY.kid})


async def who(realm_roles: list[str], **claims: Any) -> Principal:
    return await verifier().verify(signed(realm_roles, **claims))


async def test_snap4city_roles_map_to_admin_operator_and_user_by_default() -> None:
    for role in ("RootAdmin", "ToolAdmin"):
        admin = await who([role])
        assert admin.is_admin
        assert admin.is_operator  # admins see what operators see
        assert "admin" in admin.grants
    operator = await who(["AreaManager"])
    assert operator.is_operator
    assert not operator.is_admin
    assert operator.grants == {"operator", "user"}
    user = await who(["Manager"])
    assert (user.is_admin, user.is_operator, user.grants) == (False, False, {"user"})
    assert user.roles == {"Manager"}


async def test_a_token_without_a_known_role_is_still_a_plain_user() -> None:
    nobody = await who(["offline_access", "default-roles-mlbus"])
    assert nobody.grants == {"user"}
    assert not nobody.is_admin


async def test_client_roles_count_only_for_the_named_clients() -> None:
    named = await who(["Manager"], resource_access={"mlbus": {"roles": ["ToolAdmin"]}})
    assert named.is_admin
    # Any client's administrator can define client roles: another client's "RootAdmin" is
    # nobody's admin right.
    other = await who(["Manager"], resource_access={"grafana": {"roles": ["RootAdmin"]}})
    assert not other.is_admin
    assert other.roles == {"Manager"}


async def test_the_plain_roles_claim_counts_as_realm_roles() -> None:
    assert (await who([], roles=["AreaManager"])).is_operator


async def test_the_mapping_is_configuration() -> None:
    custom = verifier(
        role_map={"mlbus-admins": "admin", "AreaManager": "user"}, role_clients=["portal"]
    )
    admin = await custom.verify(
        signed([], azp="portal", resource_access={"portal": {"roles": ["mlbus-admins"]}})
    )
    assert admin.is_admin
    demoted = await custom.verify(signed(["AreaManager", "RootAdmin"], azp="portal"))
    assert not demoted.is_operator
    assert not demoted.is_admin  # RootAdmin is not in this map


def test_the_older_admin_roles_setting_still_makes_admins() -> None:
    roles = RoleMap.of(extra_admin_roles=["Boss"])
    assert roles.grants_of(["Boss"]) == {"admin", "user"}
    assert roles.grants_of(["RootAdmin"]) == {"admin", "user"}


async def test_malformed_role_claims_count_for_nothing() -> None:
    odd = await who(
        [],
        realm_access="RootAdmin",
        roles={"RootAdmin": True},
        resource_access={"mlbus": ["RootAdmin"]},
    )
    assert odd.roles == frozenset()
    assert not odd.is_admin


async def test_id_and_refresh_tokens_are_not_access_tokens() -> None:
    for typ in ("ID", "Refresh", "Logout"):
        message = await rejected(signed(["RootAdmin"], typ=typ), verifier())
        assert "not an access token" in message


async def test_the_user_is_the_preferred_username() -> None:
    named = await who([], preferred_username="alice", sub="f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert named.user == "alice"
    unnamed = signed([], preferred_username=None, sub=None)
    assert "names no user" in await rejected(unnamed, verifier())


async def test_roles_count_only_in_tokens_issued_to_mlbus_clients() -> None:
    """Found in review: another client's administrator can make its tokens claim any role (a
    hardcoded-claim mapper), so a token issued to that client is a plain user's."""
    forged = await who(["RootAdmin"], azp="some-other-app", roles=["RootAdmin"])
    assert not forged.is_admin
    assert forged.grants == {"user"}
    own = await who(["RootAdmin"], azp="nodered-iotedge")
    assert own.is_admin
    unnamed = await who(["RootAdmin"], azp=None)  # no azp (not Keycloak): the claims count
    assert unnamed.is_admin
