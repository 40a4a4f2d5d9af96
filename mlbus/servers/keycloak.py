"""Keycloak 26 (the real server distribution) in dev mode on 127.0.0.1, with the realm of
deploy/keycloak imported at start.

`deploy/keycloak/fetch.sh` unpacks the distribution once under ~/.cache/mlbus and builds its
dev-mode image there. Each server gets its own home: a copy of `bin/` (so Keycloak takes the home
as its `kc.home.dir`, with its own `data/`) and of `lib/quarkus/` (so a server started with other
build options, such as a path prefix, re-builds its own copy and never the shared one); the rest
are links to the distribution.

The realm signs with an RSA key made once per machine (`signing-key.pem` beside the distribution,
passed to the realm file as a placeholder), so tests can derive from a real token the cases that
Keycloak never issues (a future `nbf`, a foreign issuer with a valid signature).

A fresh database costs ~20 s of schema creation and realm import on two cores. So the database of
a server that imported the realm is kept, once, as a template for that realm file and those
placeholders; later fresh homes start from a copy. A home whose realm stamp differs (the realm
file changed) starts over from the template, because Keycloak skips the import of a realm that
exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

from mlbus.devissuer import SigningKey
from mlbus.servers.process import REPO, Child, ServerError, free_port, port_open, run_script

DEPLOY = REPO / "deploy" / "keycloak"
REALM_FILE = DEPLOY / "realm-mlbus.json"
NODE_RED_CLIENT = "nodered-iotedge"  # Snap4City's nodes ask for tokens with this public client


class KeycloakServer:
    """Start and stop one local Keycloak; its database lives in `home`."""

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        *,
        realm: str = "mlbus",
        audience: str = "mlbus",
        path_prefix: str = "",
    ) -> None:
        self.home, self.realm, self.audience = home, realm, audience
        self.port = port or free_port()
        self.path_prefix = path_prefix.rstrip("/")
        self.child: Child | None = None
        self.signing_key: SigningKey | None = None
        self._template: Path | None = None

    @property
    def url(self) -> str:
        """The server's base URL (with the path prefix, e.g. `/auth`, when one is set)."""
        return f"http://127.0.0.1:{self.port}{self.path_prefix}"

    @property
    def realm_url(self) -> str:
        """The realm's URL: the tokens' `iss`."""
        return f"{self.url}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        """The realm's signing keys."""
        return f"{self.realm_url}/protocol/openid-connect/certs"

    def start(self, timeout_s: float = 180.0) -> None:
        """Fetch and prepare Keycloak if needed, start it, wait until the realm answers."""
        self.launch()
        self.wait(timeout_s)

    def launch(self) -> None:
        """Start the process and return at once (the local stack starts others meanwhile)."""
        if port_open(self.port):
            raise ServerError(f"port {self.port} is taken; is another Keycloak running?")
        dist = Path(run_script(DEPLOY / "fetch.sh"))
        java_home = (dist / "java-home").read_text().strip()
        self.signing_key = SigningKey.load_or_create(dist / "signing-key.pem")
        self._lay_out(dist)
        self._template = self._prepare_database(dist, self.signing_key)
        argv = [
            str(self.home / "bin" / "kc.sh"),
            "start-dev",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            "--import-realm",
        ]
        if self.path_prefix:
            argv.append(f"--http-relative-path={self.path_prefix}")
        env = {
            "JAVA_HOME": java_home,
            "MLBUS_KEYCLOAK_REALM": self.realm,
            "MLBUS_KEYCLOAK_AUDIENCE": self.audience,
            "MLBUS_KEYCLOAK_SIGNING_KEY": _pem_body(self.signing_key),
        }
        self.child = Child("keycloak", argv, self.home / "keycloak.log", env)
        self.child.start()

    def wait(self, timeout_s: float = 180.0) -> None:
        """Wait until the realm's OpenID configuration answers."""
        if self.child is None:
            raise ServerError("keycloak was not launched")
        self.child.wait_ready(self._answers, timeout_s)

    def _lay_out(self, dist: Path) -> None:
        for part in ("bin", "lib/quarkus", "lib/quarkus-run.jar"):
            if not (self.home / part).exists():
                copy = shutil.copytree if (dist / part).is_dir() else shutil.copy2
                (self.home / part).parent.mkdir(parents=True, exist_ok=True)
                copy(dist / part, self.home / part)
        for part in ("lib/lib", "lib/app", "providers", "themes", "conf"):
            if not (self.home / part).exists():
                (self.home / part).symlink_to(dist / part)
        imports = self.home / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REALM_FILE, imports / REALM_FILE.name)

    def _prepare_database(self, dist: Path, key: SigningKey) -> Path | None:
        """Start over from the template when the realm changed; the template path to fill at
        stop when there is none yet."""
        digest = hashlib.sha256(REALM_FILE.read_bytes())
        digest.update(f"\0{self.realm}\0{self.audience}\0{dist.name}\0{key.kid}".encode())
        stamp_key = digest.hexdigest()[:16]
        stamp, h2 = self.home / "data" / "realm.stamp", self.home / "data" / "h2"
        template = dist / "realm-db" / stamp_key
        if stamp.exists() and stamp.read_text() == stamp_key:
            return None
        shutil.rmtree(h2, ignore_errors=True)
        stamp.write_text(stamp_key)
        if template.exists():
            shutil.copytree(template, h2)
            return None
        return template

    def _answers(self) -> bool:
        try:
            config = httpx.get(f"{self.realm_url}/.well-known/openid-configuration", timeout=2.0)
        except httpx.HTTPError:
            return False
        return config.status_code == 200

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then kill if it hangs; keep the first fresh database as the
        template for later homes."""
        if self.child is None:
            return
        code = self.child.stop(timeout_s=30)
        template, self._template = self._template, None
        if template is not None and code in (0, 143) and not template.exists():
            part = template.with_name(f"{template.name}.{os.getpid()}.part")
            shutil.copytree(self.home / "data" / "h2", part, dirs_exist_ok=True)
            try:
                part.rename(template)
            except OSError:  # another server saved the same template first
                shutil.rmtree(part, ignore_errors=True)


def _pem_body(key: SigningKey) -> str:
    """The PKCS#8 key as one line of base64, as Keycloak's `rsa` key provider takes it."""
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return "".join(line for line in pem.decode().splitlines() if "-----" not in line)


class TokenError(RuntimeError):
    """Keycloak refused to issue a token; the message has its error, never a token."""


def password_grant(
    realm_url: str,
    username: str,
    password: str,
    client_id: str = NODE_RED_CLIENT,
    *,
    trailing_slash: bool = False,
) -> str:
    """An access token by the password grant (what Snap4City's authentication node does; it
    calls the token endpoint with a trailing slash)."""
    form = {"grant_type": "password", "client_id": client_id}
    return _grant(realm_url, {**form, "username": username, "password": password}, trailing_slash)


def client_credentials_grant(realm_url: str, client_id: str, secret: str) -> str:
    """An access token for a service account (a confidential client)."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return _grant(realm_url, form, False)


def _grant(realm_url: str, form: dict[str, str], trailing_slash: bool) -> str:
    url = f"{realm_url}/protocol/openid-connect/token" + ("/" if trailing_slash else "")
    try:
        response = httpx.post(url, data=form, timeout=30.0)
    except httpx.HTTPError as exc:
        raise TokenError(f"could not reach Keycloak at {url}: {exc}") from exc
    if response.status_code != 200:
        raise TokenError(
            f"Keycloak answered {response.status_code} at {url}: {_error_of(response)}"
        )
    return str(response.json()["access_token"])


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return f"{body.get('error')}: {body.get('error_description', '')}"
