"""``auth.login`` and per-call authentication (§1.2)."""

from __future__ import annotations

import base64

import httpx
import jwt

from clearml_sim.testing import InProcessApi


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


async def test_login_returns_jwt_with_sdk_claims(client: httpx.AsyncClient) -> None:
    resp = await client.get("/auth.login", auth=("mlbus-dev-access", "mlbus-dev-secret"))
    assert resp.status_code == 200
    token = resp.json()["data"]["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["api_version"] == "2.31"
    assert claims["server_version"] == "2.0.0"
    assert claims["feature_set"] == "basic"
    assert claims["exp"] > claims["iat"]
    assert {"user", "company", "role"} <= set(claims["identity"])
    ok = await client.get("/tasks.get_all", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


async def test_login_expiration_sec(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/auth.login?expiration_sec=60", auth=("mlbus-dev-access", "mlbus-dev-secret")
    )
    claims = jwt.decode(resp.json()["data"]["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60


async def test_login_failures(api: InProcessApi) -> None:
    cases = [
        (None, 20, "Unauthorized (missing credentials)"),
        (_basic("mlbus-dev-access", "wrong"), 22, "Unauthorized (invalid credentials)"),
        ("Basic !!!not-base64", 21, "Unauthorized (malformed credentials)"),
    ]
    for header, subcode, msg in cases:
        status, env = await api.call("auth.login", auth=header, version="")
        assert status == 401
        assert (env["meta"]["result_subcode"], env["meta"]["result_msg"]) == (subcode, msg)


async def test_calls_need_credentials(api: InProcessApi) -> None:
    status, env = await api.call("tasks.get_all", auth=None)
    assert (status, env["meta"]["result_subcode"]) == (401, 20)
    status, env = await api.call("tasks.get_all", auth="Bearer not.a.token")
    assert (status, env["meta"]["result_subcode"]) == (401, 30)
    status, env = await api.call("tasks.get_all", auth=_basic("someone", "else"))
    assert (status, env["meta"]["result_subcode"]) == (401, 22)


async def test_token_signed_with_other_secret_is_rejected(api: InProcessApi) -> None:
    forged = jwt.encode({"exp": 9_999_999_999, "api_version": "2.31"}, "x" * 32, "HS256")
    status, env = await api.call("tasks.get_all", auth=f"Bearer {forged}")
    assert (status, env["meta"]["result_subcode"]) == (401, 30)
