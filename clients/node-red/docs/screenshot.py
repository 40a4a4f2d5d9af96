"""Makes docs/flow.png, the README's picture: the packed palette installed into a clean Node-RED,
the example flow "train and wait for the end" deployed, the editor photographed by headless
Chromium. Run from the repository root: `.venv/bin/python clients/node-red/docs/screenshot.py`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from mlbus.servers.nodered_palette import PALETTE, PaletteNodeRed, pack

EXAMPLE = PALETTE / "examples" / "train-and-wait-for-the-end.json"
OUT = PALETTE / "docs" / "flow.png"


def main() -> None:
    """Pack, install, start, deploy, photograph, stop."""
    home = Path(tempfile.mkdtemp(prefix="mlbus-palette-shot-"))
    server = PaletteNodeRed(home, pack(home / "pack"))
    server.install()
    server.start()
    try:
        server.deploy(json.loads(EXAMPLE.read_text()))
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            raise SystemExit("chromium not found (scripts/bootstrap.sh installs it)")
        subprocess.run(  # noqa: S603 - fixed argv
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1400,560",
                "--virtual-time-budget=15000",
                f"--screenshot={OUT}",
                f"{server.url}/#flow/ex1.tab",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
