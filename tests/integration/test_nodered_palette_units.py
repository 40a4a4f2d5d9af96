"""The Node-RED palette's own unit tests (clients/node-red/test, Node.js' test runner and
node-red-node-test-helper against a fake gateway), run by `make test` like every other test."""

from __future__ import annotations

import subprocess

from mlbus.servers.process import REPO

PALETTE = REPO / "clients" / "node-red"


def test_the_palettes_node_unit_tests_pass() -> None:
    subprocess.run(  # noqa: S603 - the repository's own script
        ["bash", str(PALETTE / "install.sh")],  # noqa: S607
        check=True,
        timeout=600,
    )
    done = subprocess.run(
        ["npm", "test"],  # noqa: S607
        cwd=PALETTE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-8000:]
    assert "# fail 0" in report, report[-8000:]
    passed = next(line for line in report.splitlines() if line.startswith("# pass "))
    assert int(passed.split()[-1]) >= 20, report[-8000:]
