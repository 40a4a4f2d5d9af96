"""Sessions shared by every copy of the console: two console processes on one MongoDB, a person
signs in on one (through Keycloak's own login page) and the other serves their pages; a logout
on either ends the session on both. The database keeps a hash of the cookie's secret, never the
secret."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect
from pymongo import AsyncMongoClient

from mlbus.servers.keycloak import KeycloakServer
from mlbus.servers.process import Child, free_port
from services.console.sessions import COLLECTION, COOKIE
from tests.browser import browser  # noqa: F401 - the fixture by name
from tests.conftest import Bus
from tests.e2e.test_console import Stack, ingest_server, sign_in


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def ingest_url(bus: Bus, keycloak: KeycloakServer) -> Iterator[str]:
    """Ingest, trusting the real realm."""
    server = ingest_server(bus, keycloak).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def consoles(
    bus: Bus, keycloak: KeycloakServer, ingest_url: str, tmp_path: Path
) -> AsyncIterator[list[Stack]]:
    """Two `python -m services.console` processes on the test's database."""
    children, stacks = [], []
    try:
        for n in (1, 2):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {
                **bus.env(),
                "MLBUS_CONSOLE_PORT": str(port),
                "MLBUS_CONSOLE_PUBLIC_URL": url,
                "MLBUS_CONSOLE_INGEST_URL": ingest_url,
                "MLBUS_CONSOLE_ISSUER": keycloak.realm_url,
            }
            argv = [sys.executable, "-m", "services.console"]
            child = Child(f"console-{n}", argv, tmp_path / f"console-{n}.log", env)
            child.start()
            children.append(child)
            stacks.append(Stack(url, ingest_url, keycloak))
        for child, stack in zip(children, stacks, strict=True):
            ready = functools.partial(_healthy, stack.console)
            await asyncio.to_thread(child.wait_ready, ready, 60)
        yield stacks
    finally:
        for child in children:
            await asyncio.to_thread(child.stop)


async def test_a_session_made_on_one_console_is_served_and_ended_by_another(
    consoles: list[Stack],
    bus: Bus,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    one, two = consoles
    context, page = await sign_in(browser, one, "alice")
    secret = next(c["value"] for c in await context.cookies() if c["name"] == COOKIE)
    csrf = await page.locator("header form[action='/logout'] input[name=csrf]").input_value()

    # The other copy knows her: no trip to Keycloak, the same session (its CSRF token).
    served = await page.goto(f"{two.console}/my/requests")
    assert served is not None
    assert served.status == 200
    assert served.request.redirected_from is None  # not signed in again through Keycloak
    assert page.url == f"{two.console}/my/requests"
    await expect(page.locator("#user")).to_have_text("alice")
    assert (
        await page.locator("header form[action='/logout'] input[name=csrf]").input_value() == csrf
    )

    # What the database holds: the secret's hash as the key, an expiry, never the secret.
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(bus.mongo_uri, tz_aware=True)
    try:
        docs = await client[bus.mongo_db][COLLECTION].find({"kind": "session"}).to_list()
    finally:
        await client.close()
    assert [d["_id"] for d in docs] == [hashlib.sha256(secret.encode()).hexdigest()]
    assert "expires_at" in docs[0]
    assert secret not in repr(docs)

    async def status_on(url: str) -> int:
        async with httpx.AsyncClient(cookies={COOKIE: secret}, timeout=15) as http:
            return (await http.get(f"{url}/my/requests")).status_code

    assert await status_on(one.console) == 200

    # Logging out on the second copy ends the session on the first too.
    await page.click("header form[action='/logout'] button")
    await page.wait_for_url(f"{two.console}/")
    assert await status_on(one.console) == 303  # off to the login: the cookie is no one's now
    assert await status_on(two.console) == 303
    await context.close()
