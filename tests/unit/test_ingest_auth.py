"""Bearer token verification: only a token signed by the issuer's key, for this issuer and
audience, inside its validity window, gets through. The JWKS is served by a transport double."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from mlbus.devissuer import SigningKey
from runtime.http import ApiError
from services.ingest.auth import JwksVerifier, Principal

ISSUER = "http://keycloak.test/realms/snap4city"
KEY = SigningKey.generate()
OTHER = SigningKey.generate()


def verifier(audience: str | None = None, keys: list[SigningKey] | None = None) -> JwksVerifier:
    body = {"keys": [k.jwk() for k in (keys or [KEY])]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    return JwksVerifier(
        jwks_url="http://keycloak.test/certs",
        issuer=ISSUER,
        audience=audience,
        leeway_s=5,
        admin_roles=("RootAdmin", "ToolAdmin"),
        http=httpx.AsyncClient(transport=transport),
    )


async def rejected(token: str, v: JwksVerifier | None = None) -> str:
    with pytest.raises(ApiError) as caught:
        await (v or verifier()).verify(token)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    return caught.value.message


async def test_a_valid_token_gives_user_and_roles() -> None:
    token = KEY.sign(ISSUER, "alice", ["Manager"], resource_access={"mlbus": {"roles": ["x"]}})
    who = await verifier().verify(token)
    assert who.user == "alice"
    assert who.roles == {"Manager", "x"}
    assert who.grants == {"user"}
    assert not who.is_admin
    admin = await verifier().verify(KEY.sign(ISSUER, "root", ["ToolAdmin"]))
    assert admin.is_admin


async def test_expired_and_not_yet_valid_tokens_are_refused() -> None:
    now = int(time.time())
    assert "expired" in await rejected(KEY.sign(ISSUER, "a", [], exp=now - 60, iat=now - 120))
    assert "not valid yet" in await rejected(KEY.sign(ISSUER, "a", [], nbf=now + 120))


async def test_a_little_clock_skew_is_tolerated() -> None:
    now = int(time.time())
    assert (await verifier().verify(KEY.sign(ISSUER, "a", [], exp=now - 2))).user == "a"


async def test_wrong_issuer_and_wrong_audience_are_refused() -> None:
    await rejected(KEY.sign("http://evil.test/realms/x", "a", []))
    await rejected(KEY.sign(ISSUER, "a", [], aud="other-client"), verifier(audience="mlbus"))
    ok = await verifier(audience="mlbus").verify(KEY.sign(ISSUER, "a", [], aud="mlbus"))
    assert ok.user == "a"


async def test_a_token_signed_by_another_key_is_refused() -> None:
    forged = OTHER.sign(ISSUER, "alice", ["RootAdmin"])
    assert "unknown key" in await rejected(forged)
    # the same kid as the real key, but the other key's signature
    head, body, _ = forged.split(".")
    real_head = KEY.sign(ISSUER, "x", []).split(".")[0]
    tampered = ".".join([real_head, body, forged.split(".")[2]])
    await rejected(tampered)
    assert head != real_head


async def test_alg_none_and_hs256_with_the_public_key_are_refused() -> None:
    claims = {"iss": ISSUER, "preferred_username": "alice", "exp": int(time.time()) + 60}
    segments = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "none", "kid": KEY.kid}, claims)
    ]
    assert "RS256" in await rejected(".".join([*segments, ""]))
    public_pem = KEY.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert "RS256" in await rejected(_hs256(claims, public_pem))


def _hs256(claims: dict[str, object], secret: bytes) -> str:
    """A token MAC'd with the issuer's public key as the HMAC secret (the classic confusion)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = (
        b64(json.dumps({"alg": "HS256", "kid": KEY.kid}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(signature)


async def test_garbage_is_refused_without_a_crash() -> None:
    assert "malformed" in await rejected("not-a-jwt")
    await rejected("a.b.c")


async def test_every_key_of_the_jwks_is_usable() -> None:
    v = verifier(keys=[KEY, OTHER])
    assert (await v.verify(OTHER.sign(ISSUER, "bob", []))).user == "bob"


async def test_a_verified_token_is_remembered_until_it_expires() -> None:
    v = verifier()
    v._leeway = 0
    # Expires 3 s from now: a loaded machine may pause a second between two lines.
    exp = int(time.time()) + 3
    token = KEY.sign(ISSUER, "alice", ["Manager"], exp=exp)
    assert (await v.verify(token)).user == "alice"
    calls = 0
    real = v._verify

    async def counting(t: str) -> tuple[Principal, float]:
        nonlocal calls
        calls += 1
        return await real(t)

    v._verify = counting
    assert (await v.verify(token)).user == "alice"
    assert calls == 0  # served from memory
    await asyncio.sleep(max(0.0, exp + 1 - time.time()))  # past its exp second
    assert "expired" in await rejected(token, v)
    assert calls == 1  # expired in memory, so verified again, and refused


def counted_jwks(status: list[int], fetches: list[int]) -> JwksVerifier:
    """A JWKS that answers `status[0]` (changeable) and counts its fetches, slowly."""

    async def answer(request: httpx.Request) -> httpx.Response:
        fetches.append(1)
        await asyncio.sleep(0.05)
        if status[0] != 200:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"keys": [KEY.jwk()]})

    return JwksVerifier(
        jwks_url="http://keycloak.test/certs",
        issuer=ISSUER,
        audience=None,
        leeway_s=5,
        http=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )


async def test_a_burst_of_tokens_with_a_new_key_shares_one_fetch_and_all_pass() -> None:
    """Found by two ingests under one burst: the first request fetched the keys and the others,
    seeing a fetch "just done", were refused with 401 unknown key while it was in flight."""
    fetches: list[int] = []
    v = counted_jwks([200], fetches)
    tokens = [KEY.sign(ISSUER, f"user{i}", []) for i in range(20)]
    users = await asyncio.gather(*(v.verify(t) for t in tokens))
    assert [p.user for p in users] == [f"user{i}" for i in range(20)]
    assert len(fetches) == 1


async def test_issuer_down_known_keys_keep_working_new_ones_are_503_not_401() -> None:
    status, fetches = [200], []
    v = counted_jwks(status, fetches)
    assert (await v.verify(KEY.sign(ISSUER, "alice", []))).user == "alice"
    status[0] = 503  # Keycloak goes away
    assert (await v.verify(KEY.sign(ISSUER, "bob", []))).user == "bob"  # key already known
    v._keys.clear()  # a key id we have not seen yet (a rotation while the issuer is down)
    v._fetched_at = 0.0
    with pytest.raises(ApiError) as caught:
        await v.verify(KEY.sign(ISSUER, "carol", []))
    assert (caught.value.status, caught.value.code) == (503, "identity_unavailable")
    assert caught.value.headers == {"Retry-After": "5"}
    status[0], v._fetched_at = 200, 0.0  # back
    assert (await v.verify(KEY.sign(ISSUER, "carol", []))).user == "carol"


async def test_issuer_gone_right_after_a_fetch_a_new_key_id_waits_and_gets_503_not_401(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by tests/faults (Keycloak away): within the rate limit of fetches, a new key id was
    refused at once with 401 "unknown key", although the issuer had gone and could not say."""
    monkeypatch.setattr("services.ingest.auth._MIN_REFRESH_S", 0.5)
    status, fetches = [200], []
    v = counted_jwks(status, fetches)
    assert (await v.verify(KEY.sign(ISSUER, "alice", []))).user == "alice"
    status[0] = 503  # Keycloak goes away just after the fetch
    began = time.monotonic()
    with pytest.raises(ApiError) as caught:
        await v.verify(OTHER.sign(ISSUER, "carol", []))
    assert (caught.value.status, caught.value.code) == (503, "identity_unavailable")
    assert time.monotonic() - began < 2.0  # waited for the next fetch, no longer
    assert len(fetches) == 2
