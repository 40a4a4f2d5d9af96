"""Debian's Chromium driven by Playwright for Python (`executable_path`: no browser download of
Playwright's own; scripts/bootstrap.sh installs `chromium` with apt when it is missing).

`axe` runs axe-core (installed from npm by deploy/web/fetch.sh) in a page and returns its serious
and critical violations. `offsite` lists the requests a page made anywhere but 127.0.0.1: an
offline cluster could not answer them.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, async_playwright

from mlbus.servers.process import REPO, run_script


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path)
        try:
            yield launched
        finally:
            await launched.close()


def record_offsite(page: Page) -> list[str]:
    """The URLs of requests that leave 127.0.0.1 (filled while the page lives)."""
    seen: list[str] = []

    def check(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
            seen.append(request.url)

    page.on("request", check)
    return seen


def _axe_source() -> str:
    home = Path(run_script(REPO / "deploy" / "web" / "fetch.sh"))
    return (home / "node_modules" / "axe-core" / "axe.min.js").read_text()


async def axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    # Evaluated through the DevTools protocol: the console's CSP forbids inline scripts (and
    # must keep doing so), which a <script> tag with the source would be.
    await page.evaluate(_axe_source() + "\n;0")
    result: dict[str, Any] = await page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
