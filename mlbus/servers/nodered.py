"""Node-RED 4 on 127.0.0.1 running only deploy/nodered's flow: the existing-client check.

The flow stands in for Snap4City's `node-red-contrib-snap4city-clearml` nodes (not on the npm
registry) with core nodes that send exactly what they send: `POST /mlbus-check` gets a token from
Keycloak by the password grant and calls both `/clearml/serve/*` paths of a gateway, then answers
a JSON summary (never the token). `deploy/nodered/fetch.sh` installs Node-RED once with `npm ci`
under ~/.cache/mlbus; each server keeps its own state (`.config.*.json`) in `home`, and the
settings forbid writing the flow file back, so the repository stays untouched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from mlbus.servers.process import REPO, Child, ServerError, free_port, port_open, run_script

DEPLOY = REPO / "deploy" / "nodered"
CHECK_PATH = "/mlbus-check"
HEALTH_PATH = "/mlbus-check/health"


class NodeRedServer:
    """Start and stop one local Node-RED with the check flow; its state lives in `home`."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.child: Child | None = None

    @property
    def url(self) -> str:
        """The server's base URL (the flow's `http in` endpoints hang below it)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def check_url(self) -> str:
        """`POST` here runs the check (see deploy/nodered/flows.json for the body)."""
        return f"{self.url}{CHECK_PATH}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Install Node-RED if needed, start it, wait until the flow's health endpoint answers."""
        if port_open(self.port):
            raise ServerError(f"port {self.port} is taken; is another Node-RED running?")
        install = Path(run_script(DEPLOY / "fetch.sh"))
        node = shutil.which("node")
        if node is None:
            raise ServerError("node not found: Node-RED 4 needs Node.js 18.5 or newer")
        user_dir = self.home / "user"
        user_dir.mkdir(parents=True, exist_ok=True)
        manifest = user_dir / "package.json"  # Node-RED looks for extra nodes there (none)
        if not manifest.exists():
            manifest.write_text('{"name": "mlbus-node-red-user", "private": true}\n')
        argv = [
            node,
            str(install / "node_modules" / "node-red" / "red.js"),
            "--settings",
            str(DEPLOY / "settings.js"),
        ]
        env = {"MLBUS_NODERED_PORT": str(self.port), "MLBUS_NODERED_USER_DIR": str(user_dir)}
        self.child = Child("node-red", argv, self.home / "node-red.log", env)
        self.child.start()
        self.child.wait_ready(self._answers, timeout_s)

    def _answers(self) -> bool:
        try:
            response = httpx.get(f"{self.url}{HEALTH_PATH}", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then kill if it hangs."""
        if self.child is not None:
            self.child.stop(timeout_s=10)
