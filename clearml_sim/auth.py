"""Credentials and tokens: ``auth.login`` issues an HS256 JWT; Bearer or Basic on every call."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time

import jwt

from clearml_sim import errors
from clearml_sim.config import SimConfig


class TokenAuth:
    """Checks ``Authorization`` headers; verified tokens are cached: the hot path is a dict hit."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        # derived from the secret key so tokens survive a simulator restart
        self._signing_key = hashlib.sha256(f"clearml-sim:{config.secret_key}".encode()).hexdigest()
        raw = f"{config.access_key}:{config.secret_key}".encode()
        self._basic = "Basic " + base64.b64encode(raw).decode()
        self._tokens: dict[str, float] = {}

    def login_check(self, header: str | None) -> None:
        """``auth.login`` wants HTTP Basic with the configured key pair."""
        if not header:
            raise errors.unauthorized(20)
        if header == self._basic:
            return
        if not header.startswith("Basic "):
            raise errors.unauthorized(10)
        self._check_basic(header)

    def check(self, header: str | None) -> None:
        """Any other endpoint: Bearer token from ``auth.login`` or Basic credentials."""
        if header is None or header == "":
            raise errors.unauthorized(20)
        if header == self._basic:
            return
        if header.startswith("Bearer "):
            self._check_token(header[7:])
        elif header.startswith("Basic "):
            self._check_basic(header)
        else:
            raise errors.unauthorized(10)

    def _check_basic(self, header: str) -> None:
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise errors.unauthorized(21) from exc
        if ":" not in decoded:
            raise errors.unauthorized(21)
        raise errors.unauthorized(22)

    def _check_token(self, token: str) -> None:
        exp = self._tokens.get(token)
        now = time.time()
        if exp is not None and exp > now:
            return
        try:
            claims = jwt.decode(token, self._signing_key, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            self._tokens.pop(token, None)
            raise errors.unauthorized(30) from exc
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[token] = float(claims["exp"])

    def issue(self, expiration_sec: int | None = None) -> str:
        """A token shaped like the server's (``bll/auth``), with the claims the SDK reads."""
        cfg = self._config
        now = int(time.time())
        ttl = int(expiration_sec) if expiration_sec else cfg.token_ttl_s
        claims = {
            "identity": {
                "user": cfg.user_id,
                "company": cfg.company_id,
                "role": "user",
                "user_name": cfg.user_name,
                "company_name": cfg.company_name,
            },
            "iat": now,
            "exp": now + ttl,
            "env": "<unknown>",
            "session_id": os.urandom(8).hex(),
            "api_version": cfg.api_version,
            "server_version": cfg.server_version,
            "server_build": "sim",
            "feature_set": "basic",
        }
        token = jwt.encode(claims, self._signing_key, algorithm="HS256")
        self._tokens[token] = float(now + ttl)
        return token
