"""A Node-RED 4 for the palette's end-to-end test: `node-red-contrib-mlbus` installed from its
`npm pack` tarball into a clean user directory (exactly as a flow author installs it), the editor
and admin API on 127.0.0.1 (flows are deployed through `POST /flows`, credentials included), and
a file-backed context store, so that runs being followed survive a restart.

The same pinned Node-RED as the existing-client check (`deploy/nodered/fetch.sh`); everything
this server writes stays in `home`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from mlbus.servers.nodered import DEPLOY
from mlbus.servers.process import REPO, Child, ServerError, free_port, run_script

PALETTE = REPO / "clients" / "node-red"

SETTINGS = """
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %(port)d,
    userDir: %(user_dir)s,
    flowFile: "flows.json",
    credentialSecret: "mlbus-e2e-only",
    httpAdminRoot: "/",
    httpNodeRoot: "/",
    contextStorage: { default: { module: "localfilesystem", config: { flushInterval: 1 } } },
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    logging: { console: { level: "info", metrics: false, audit: false } },
    editorTheme: {
        tours: false,
        palette: {
            categories: ["mlbus", "common", "function", "network", "sequence", "parser", "storage"],
        },
    },
};
"""


def pack(dest: Path) -> Path:
    """`npm pack` the palette into `dest`; the tarball's path."""
    dest.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(  # noqa: S603 - fixed argv
        ["npm", "pack", "--json", "--pack-destination", str(dest)],  # noqa: S607
        cwd=PALETTE,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    name: str = json.loads(done.stdout)[0]["filename"]
    return dest / name


class PaletteNodeRed:
    """One Node-RED with the palette installed from `tarball`; state in `home`."""

    def __init__(self, home: Path, tarball: Path, env: dict[str, str] | None = None) -> None:
        self.home, self.tarball, self.env = home, tarball, env or {}
        self.port = free_port()
        self.user_dir = home / "user"
        self.child: Child | None = None

    @property
    def url(self) -> str:
        """The editor, admin API and the flows' `http in` endpoints."""
        return f"http://127.0.0.1:{self.port}"

    def install(self) -> None:
        """`npm install <tarball>` into a clean user directory (no registry needed: the
        palette has no runtime dependencies)."""
        self.user_dir.mkdir(parents=True, exist_ok=True)
        (self.user_dir / "package.json").write_text('{"name": "node-red-user", "private": true}\n')
        subprocess.run(  # noqa: S603 - fixed argv, the tarball this module packed
            ["npm", "install", "--no-audit", "--no-fund", "--offline", str(self.tarball)],  # noqa: S607
            cwd=self.user_dir,
            capture_output=True,
            check=True,
            timeout=120,
        )
        settings = SETTINGS % {"port": self.port, "user_dir": json.dumps(str(self.user_dir))}
        (self.home / "settings.js").write_text(settings)

    def start(self, timeout_s: float = 60.0) -> None:
        """Start (again, after `stop`: same port, same user directory and context)."""
        install = Path(run_script(DEPLOY / "fetch.sh"))
        node = shutil.which("node")
        if node is None:
            raise ServerError("node not found: Node-RED 4 needs Node.js 18.5 or newer")
        argv = [
            node,
            str(install / "node_modules" / "node-red" / "red.js"),
            "--settings",
            str(self.home / "settings.js"),
        ]
        self.child = Child("node-red-palette", argv, self.home / "node-red.log", self.env)
        self.child.start()
        self.child.wait_ready(self._answers, timeout_s)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/settings", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def nodes(self) -> list[dict[str, Any]]:
        """The editor's `/nodes` answer: every node set of the palette."""
        response = httpx.get(f"{self.url}/nodes", headers={"Accept": "application/json"})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def deploy(self, flows: list[dict[str, Any]]) -> None:
        """Deploy `flows` (credentials inline, as the editor sends them)."""
        response = httpx.post(
            f"{self.url}/flows",
            json=flows,
            headers={"Node-RED-Deployment-Type": "full"},
            timeout=30,
        )
        if response.status_code not in (200, 204):
            raise ServerError(f"deploy refused: {response.status_code} {response.text}")

    def log(self) -> str:
        """What Node-RED wrote (for a failing test's report)."""
        path = self.home / "node-red.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Graceful stop (SIGTERM: context flushed to disk), then kill if it hangs."""
        if self.child is not None:
            self.child.stop(timeout_s=15)
