"""A development token issuer with Keycloak's endpoint layout and token shape.

The tests that only need a token use it, and so do the benchmarks; the real Keycloak of
deploy/keycloak (mlbus/servers/keycloak.py) takes ~15 s to start. It serves
`/realms/<realm>/.well-known/openid-configuration`, `/protocol/openid-connect/certs` (JWKS) and
`/protocol/openid-connect/token[/]` with the password grant for the dev users below. Tokens are
RS256 JWTs with the claims of deploy/keycloak's realm: `preferred_username`, `realm_access.roles`,
`roles`, audience `mlbus`, no `nbf`.
Never use it in production: the users and passwords are public.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

#: user → (password, roles). Snap4City's roles: RootAdmin/ToolAdmin admins, AreaManager operator.
DEV_USERS: dict[str, tuple[str, list[str]]] = {
    "admin": ("admin", ["RootAdmin"]),
    "operator": ("operator", ["AreaManager"]),
    "alice": ("alice", ["Manager"]),
    "bob": ("bob", ["Manager"]),
}
TOKEN_LIFETIME_S = 1500  # Snap4City's documented access-token lifetime


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    """An RSA key and its key id."""

    private: rsa.RSAPrivateKey
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha256(der).hexdigest()[:16]

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh 2048-bit key."""
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key stored at `path`, made on first use."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            return cls(key)
        made = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            made.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return made

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK."""
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }

    def sign(self, issuer: str, user: str, roles: list[str], **claims: Any) -> str:
        """A Keycloak-shaped access token."""
        now = int(time.time())
        # The claims of an access token from deploy/keycloak's realm (Keycloak sets no `nbf`).
        body: dict[str, Any] = {
            "exp": now + TOKEN_LIFETIME_S,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "iss": issuer,
            "aud": "mlbus",
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, user)),
            "typ": "Bearer",
            "azp": "nodered-iotedge",
            "realm_access": {"roles": roles},
            "scope": "profile email",
            "roles": roles,
            "preferred_username": user,
        }
        body.update(claims)
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid})


def create_app(key: SigningKey, base_url: str, realm: str = "mlbus") -> Starlette:
    """The issuer's ASGI app."""
    issuer = f"{base_url}/realms/{realm}"

    async def config(_: Request) -> JSONResponse:
        oidc = f"{issuer}/protocol/openid-connect"
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{oidc}/certs",
                "token_endpoint": f"{oidc}/token",
                "grant_types_supported": ["password"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def certs(_: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.jwk()]})

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if form.get("grant_type") != "password":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        known = DEV_USERS.get(user)
        if known is None or known[0] != password:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid user credentials"},
                status_code=401,
            )
        return JSONResponse(
            {
                "access_token": key.sign(issuer, user, known[1]),
                "expires_in": TOKEN_LIFETIME_S,
                "token_type": "Bearer",
            }
        )

    oidc_path = f"/realms/{realm}/protocol/openid-connect"
    return Starlette(
        routes=[
            Route(f"/realms/{realm}/.well-known/openid-configuration", config),
            Route(f"{oidc_path}/certs", certs),
            Route(f"{oidc_path}/token", token, methods=["POST"]),
            Route(
                f"{oidc_path}/token/", token, methods=["POST"]
            ),  # Snap4City's nodes add the slash
        ]
    )


def main() -> None:
    """`python -m mlbus.devissuer --port 8090 --key var/dev-issuer/key.pem`."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--key", type=Path, default=Path("var/dev-issuer/key.pem"))
    args = parser.parse_args()
    key = SigningKey.load_or_create(args.key)
    app = create_app(key, f"http://{args.host}:{args.port}")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
