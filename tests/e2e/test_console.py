"""The console in Debian's Chromium against the real stack: Keycloak's own login page, ingest
trusting the real realm, the enqueuer, monitor and logger on real Kafka and FerretDB, the
ClearML simulator.

Screenshots go to a temporary folder; with MLBUS_SCREENSHOTS=docs they replace the ones in
docs/ that the README shows (so `make test` never dirties the tree).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from clearml_sim.testing import SimServer
from mlbus.servers.keycloak import KeycloakServer, password_grant
from mlbus.servers.process import REPO
from services.console.app import create_app as create_console
from services.console.settings import ConsoleSettings
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.logger.app import run as run_logger
from services.logger.settings import LoggerSettings
from services.monitor.app import run as run_monitor
from tests.browser import axe, browser, record_offsite  # noqa: F401 - fixtures by name
from tests.conftest import Bus
from tests.fixtures import (
    PARKING,
    UNLIMITED,
    enqueuer_settings,
    monitor_settings,
    running_enqueuer,
    running_worker,
)
from tests.support import ThreadedServer, eventually

SHOTS = REPO / "docs" if os.environ.get("MLBUS_SCREENSHOTS") == "docs" else None


@dataclass
class Stack:
    """Where the test's console and ingest listen, and the realm."""

    console: str
    ingest: str
    keycloak: KeycloakServer

    def token(self, user: str) -> str:
        """A token by the password grant (the dev realm's passwords are the user names)."""
        return password_grant(self.keycloak.realm_url, user, user)


def ingest_server(bus: Bus, keycloak: KeycloakServer) -> ThreadedServer:
    """Ingest trusting the real realm (not started)."""
    settings = IngestSettings(
        **bus.settings(),
        jwks_url=keycloak.jwks_url,
        issuer=keycloak.realm_url,
        audience="mlbus",
        instance="ingest-test",
        **UNLIMITED,  # type: ignore[arg-type]
    )
    return ThreadedServer(create_ingest(settings), "ingest")


@pytest.fixture
async def stack(bus: Bus, keycloak: KeycloakServer, sim: SimServer) -> AsyncIterator[Stack]:
    """Ingest (trusting the real realm), the workers a request needs to end, the console."""
    ingest = ingest_server(bus, keycloak)
    await asyncio.to_thread(ingest.start)

    def console_app(url: str) -> Any:
        return create_console(
            ConsoleSettings(
                **bus.settings(),
                public_url=url,
                ingest_url=ingest.url,
                issuer=keycloak.realm_url,
            )
        )

    console = ThreadedServer(console_app, "console", factory=True)
    await asyncio.to_thread(console.start)
    logger = LoggerSettings(**bus.settings(), instance="logger-test", retry_cap_s=0.2)
    try:
        async with (
            running_enqueuer(enqueuer_settings(bus, sim)),
            running_worker(run_monitor, monitor_settings(bus, sim)),
            running_worker(run_logger, logger),
        ):
            yield Stack(console.url, ingest.url, keycloak)
    finally:
        await asyncio.to_thread(console.stop)
        await asyncio.to_thread(ingest.stop)


async def shot(page: Page, name: str, tmp_path: Path) -> None:
    """A screenshot: into docs/ when asked, else the test's temporary folder."""
    folder = SHOTS if SHOTS and not name.startswith("narrow-") else tmp_path
    await page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)


async def sign_in(
    chromium: Browser, stack: Stack, user: str, locale: str = "en-GB", width: int = 1280
) -> tuple[BrowserContext, Page]:
    """A fresh browser that signs in through Keycloak's own login page."""
    context = await chromium.new_context(viewport={"width": width, "height": 900}, locale=locale)
    page = await context.new_page()
    await page.goto(f"{stack.console}/login")
    await page.wait_for_url(f"{stack.keycloak.url}/**")
    await page.fill("#username", user)
    await page.fill("#password", user)
    await page.click("#kc-login")
    await page.wait_for_url(f"{stack.console}/**")
    await expect(page.locator("#user")).to_have_text(user)
    return context, page


async def no_serious_violations(page: Page) -> None:
    found = await axe(page)
    assert found == [], found


async def api(stack: Stack, user: str, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {await asyncio.to_thread(stack.token, user)}"}
    async with httpx.AsyncClient(base_url=stack.ingest, timeout=15) as client:
        response = await client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()


async def test_admin_maps_a_task_a_user_runs_it_and_the_dashboard_counts_it(
    stack: Stack,
    browser: Browser,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    admin_context, admin = await sign_in(browser, stack, "admin")
    offsite = record_offsite(admin)
    assert admin.url == f"{stack.console}/dashboard"

    # Create through the form: a bad id first (the API's error shown at its field), then good.
    await admin.goto(f"{stack.console}/mappings/tasks")
    await admin.fill("#f-clearml_task_id", "not-an-id")
    await admin.fill("#f-default_queue", "gpu-a100")
    await admin.click("#create button[type=submit]")
    await expect(admin.locator("#e-clearml_task_id")).to_be_visible()
    await expect(admin.locator("#f-clearml_task_id")).to_have_attribute("aria-invalid", "true")

    # A queue the cluster lacks: the known queues are offered (once the monitor has seen them).
    async def queues_known() -> Any:
        return (await api(stack, "admin", "/v1/resources"))["queues"]

    await eventually(queues_known, timeout_s=30, what="the monitor's queues")
    await admin.fill("#f-clearml_task_id", PARKING)
    await admin.fill("#f-default_queue", "nowhere")
    await admin.click("#create button[type=submit]")
    await expect(admin.locator("#known-queues")).to_contain_text("gpu-a100")
    await expect(admin.locator("#f-clearml_task_id")).to_have_value(PARKING)  # the form is kept
    await admin.fill("#f-default_queue", "gpu-a100")
    await admin.fill("#f-allowed_queues", "gpu-t4, cpu")
    await admin.fill("#f-description", "Parking occupancy forecast")
    await admin.click("#create button[type=submit]")
    task_id = (await admin.locator("#created-id").inner_text()).strip()
    mappings = await api(stack, "admin", "/v1/admin/task-mappings")
    assert [m["task_id"] for m in mappings] == [task_id]
    await expect(admin.locator(f"#mappings tr[data-key='{task_id}']")).to_contain_text("gpu-a100")
    await no_serious_violations(admin)
    await shot(admin, "mappings", tmp_path)
    await admin.click(f"#mappings tr[data-key='{task_id}'] a")
    await expect(admin.locator("#audit .action").first).to_have_text("create")
    await expect(admin.locator("#audit")).to_contain_text("admin")

    # Alice watches her requests; the one she enqueues reaches `completed` without a reload.
    alice_context, alice = await sign_in(browser, stack, "alice")
    assert alice.url == f"{stack.console}/my/requests"
    await alice.evaluate("window.notReloaded = true")
    token = await asyncio.to_thread(stack.token, "alice")
    async with httpx.AsyncClient(base_url=stack.ingest, timeout=15) as client:
        accepted = await client.post(
            "/v1/enqueue",
            json={"task_id": task_id},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert accepted.status_code == 202, accepted.text
    rid = accepted.json()["request_id"]
    row = alice.locator(f"#my-rows tr[data-request-id='{rid}'] .status")
    await expect(row).to_have_text("completed", timeout=45_000)
    assert await alice.evaluate("window.notReloaded") is True
    await no_serious_violations(alice)
    await shot(alice, "my-requests", tmp_path)

    # The dashboard's numbers are the API's: the counts and every point of a chart.
    async def counted() -> dict[str, Any] | None:
        data = await api(stack, "admin", "/v1/admin/dashboard", hours=24, days=30)
        return data if sum(h["count"] for h in data["enqueue"]["hours"]) >= 1 else None

    expected = await eventually(counted, timeout_s=30, what="the enqueue in the dashboard")
    await admin.goto(f"{stack.console}/dashboard")
    await expect(admin.locator("#n-tasks")).to_have_text(str(expected["tasks"]))
    await expect(admin.locator("#n-machines")).to_have_text(str(expected["serving_machines"]))
    chart = admin.locator("#chart-enqueue-hours")
    await expect(chart.locator("canvas")).to_have_count(1)
    drawn = await chart.get_attribute("data-chart")
    assert drawn is not None
    points = json.loads(drawn)
    assert points["counts"] == [h["count"] for h in expected["enqueue"]["hours"]]
    assert points["labels"] == [h["start"] for h in expected["enqueue"]["hours"]]
    await expect(admin.locator("#totals-enqueue .count")).to_have_text(
        str(sum(d["count"] for d in expected["enqueue"]["days"]))
    )
    await no_serious_violations(admin)
    await shot(admin, "dashboard", tmp_path)
    # Live: a mapping made elsewhere shows in the counts without a reload.
    await admin.evaluate("window.notReloaded = true")
    token = await asyncio.to_thread(stack.token, "admin")
    async with httpx.AsyncClient(base_url=stack.ingest, timeout=15) as client:
        other = await client.post(
            "/v1/admin/task-mappings?force=true",
            json={"clearml_task_id": "f" * 32, "default_queue": "gpu-a100"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert other.status_code == 201, other.text
    await expect(admin.locator("#n-tasks")).to_have_text(str(expected["tasks"] + 1), timeout=15_000)
    assert await admin.evaluate("window.notReloaded") is True
    await expect(admin.locator("#chart-enqueue-hours canvas")).to_have_count(1)  # redrawn

    # The logs: the enqueue is there with its detail page (timeline, latency split).
    await admin.goto(f"{stack.console}/logs/enqueue")
    await expect(admin.locator(f"#logs tr[data-request-id='{rid}']")).to_contain_text("alice")
    await no_serious_violations(admin)
    await shot(admin, "logs", tmp_path)
    export = await admin.request.get(f"{stack.console}/logs/enqueue/export.csv")
    assert export.status == 200
    assert rid in await export.text()
    await admin.goto(f"{stack.console}/requests/{rid}")
    await expect(admin.locator("#request-status")).to_have_text("completed")
    await expect(admin.locator("#latency")).to_be_visible()
    await no_serious_violations(admin)

    # Italian: by the switch, and by Accept-Language in a browser that prefers it.
    await admin.goto(f"{stack.console}/lang/it?next=/dashboard")
    await expect(admin.locator("h1")).to_have_text("Cruscotto")
    await no_serious_violations(admin)
    assert offsite == []
    await admin_context.close()
    await alice_context.close()


async def test_roles_privacy_csrf_and_logout(
    stack: Stack,
    browser: Browser,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    # Alice's request: bob never sees it, by link or by list.
    token = await asyncio.to_thread(stack.token, "admin")
    async with httpx.AsyncClient(base_url=stack.ingest, timeout=15) as client:
        made = await client.post(
            "/v1/admin/task-mappings?force=true",
            json={"clearml_task_id": PARKING, "default_queue": "gpu-a100"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text
        alice_token = await asyncio.to_thread(stack.token, "alice")
        accepted = await client.post(
            "/v1/enqueue",
            json={"task_id": made.json()["task_id"]},
            headers={"Authorization": f"Bearer {alice_token}"},
        )
    rid = accepted.json()["request_id"]
    alice_context, alice = await sign_in(browser, stack, "alice")
    await expect(alice.locator(f"#my-rows tr[data-request-id='{rid}']")).to_have_count(1)
    own = await alice.goto(f"{stack.console}/requests/{rid}")
    assert own is not None
    assert own.status == 200
    await expect(alice.locator("#request-status")).to_be_visible()
    # A user on an admin page: 403 from the console itself.
    denied = await alice.goto(f"{stack.console}/dashboard")
    assert denied is not None
    assert denied.status == 403
    await alice_context.close()

    bob_context, bob = await sign_in(browser, stack, "bob", locale="it-IT")
    theirs = await bob.goto(f"{stack.console}/requests/{rid}")
    assert theirs is not None
    assert theirs.status == 404
    await bob.goto(f"{stack.console}/my/requests")
    await expect(bob.locator("h1")).to_have_text("Le mie richieste")  # Accept-Language: it-IT
    await expect(bob.locator(f"tr[data-request-id='{rid}']")).to_have_count(0)
    assert rid not in await bob.content()
    await bob_context.close()

    # The operator: resources with machine names, no mapping page.
    context, operator = await sign_in(browser, stack, "operator")
    assert operator.url == f"{stack.console}/resources"
    await no_serious_violations(operator)
    await shot(operator, "resources", tmp_path)
    await operator.goto(f"{stack.console}/notifications")
    await expect(operator.locator("h1")).to_have_text("Notifications")
    await no_serious_violations(operator)
    page = await operator.goto(f"{stack.console}/mappings/tasks")
    assert page is not None
    assert page.status == 403
    # A post without the session's CSRF token is refused (the session's cookie rides along).
    refused = await operator.request.post(
        f"{stack.console}/mappings/tasks/delete", form={"key": "x"}, max_redirects=0
    )
    assert refused.status == 403
    assert "csrf" in (await refused.text()).lower()
    await context.close()

    # An admin's CSRF-less delete is refused too, and the mapping stays.
    context, admin = await sign_in(browser, stack, "admin")
    refused = await admin.request.post(
        f"{stack.console}/mappings/tasks/delete",
        form={"key": made.json()["task_id"]},
        max_redirects=0,
    )
    assert refused.status == 403
    assert len(await api(stack, "admin", "/v1/admin/task-mappings")) == 1

    # Logout ends the console's session and Keycloak's: the next login asks for the password.
    await admin.click("header form[action='/logout'] button")
    await admin.wait_for_url(f"{stack.console}/")
    after = await admin.goto(f"{stack.console}/dashboard")
    assert after is not None
    await admin.wait_for_url(f"{stack.keycloak.url}/**")
    await expect(admin.locator("#username")).to_be_visible()
    await context.close()


async def test_a_user_sees_the_catalog_of_what_they_may_call(
    stack: Stack,
    browser: Browser,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    # Nothing mapped yet: the page says so and who to ask.
    alice_context, alice = await sign_in(browser, stack, "alice")
    await alice.click("header nav a[href='/catalog']")
    await expect(alice.locator("h1")).to_have_text("Catalog")
    await expect(alice.locator("#no-tasks")).to_be_visible()
    await expect(alice.locator("#no-endpoints")).to_be_visible()

    token = await asyncio.to_thread(stack.token, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.ingest, timeout=15) as client:
        for clearml_id, description in ((PARKING, "Parking occupancy forecast"), ("e" * 32, "")):
            made = await client.post(
                "/v1/admin/task-mappings?force=true",
                json={
                    "clearml_task_id": clearml_id,
                    "default_queue": "gpu-a100",
                    "allowed_queues": ["cpu"],
                    "description": description,
                },
                headers=headers,
            )
            assert made.status_code == 201, made.text
        machine = await client.post(
            "/v1/admin/serving-machines",
            json={
                "serving_task_id": "7a" * 16,
                "base_urls": ["http://10.9.8.7:8080/serve"],
                "description": "City models",
            },
            headers=headers,
        )
        assert machine.status_code == 201, machine.text
        machine_id = machine.json()["machine_id"]
        schema = {"type": "object", "properties": {"capacity": {"type": "integer"}}}
        for endpoint, extra in (
            ("parking_free_slots", {"description": "Free slots now", "input_schema": schema}),
            ("traffic_flow", {}),
        ):
            mapped = await client.post(
                "/v1/admin/endpoint-mappings",
                json={"machine_id": machine_id, "endpoint": endpoint, **extra},
                headers=headers,
            )
            assert mapped.status_code == 201, mapped.text

    # Exactly what the API says alice may call: every id, no other, no real ClearML id.
    expected = await api(stack, "alice", "/v1/catalog")
    assert len(expected["tasks"]) == 2
    assert len(expected["endpoints"]) == 2
    await alice.reload()
    rows = alice.locator("#catalog-tasks tbody tr")
    await expect(rows).to_have_count(2)
    shown = await rows.evaluate_all("rows => rows.map(r => r.dataset.taskId)")
    assert shown == [t["task_id"] for t in expected["tasks"]]
    first = alice.locator(f"#catalog-tasks tr[data-task-id='{expected['tasks'][0]['task_id']}']")
    await expect(first).to_contain_text(expected["tasks"][0]["description"] or "no description")
    endpoints = alice.locator("#catalog-endpoints tbody tr")
    shown_endpoints = await endpoints.evaluate_all(
        "rows => rows.map(r => [r.dataset.machineId, r.dataset.endpoint])"
    )
    assert shown_endpoints == [[e["machine_id"], e["endpoint"]] for e in expected["endpoints"]]
    slots = alice.locator("#catalog-endpoints tr[data-endpoint='parking_free_slots']")
    await expect(slots).to_contain_text("Free slots now")
    await expect(slots).to_contain_text("City models")
    page = await alice.content()
    assert PARKING not in page
    assert "10.9.8.7" not in page
    # The copy button holds the id to send.
    button = first.locator("button.copy")
    assert await button.get_attribute("data-copy") == expected["tasks"][0]["task_id"]
    await no_serious_violations(alice)
    await shot(alice, "catalog", tmp_path)

    # In Italian too; and every role has it in the menu.
    await alice.goto(f"{stack.console}/lang/it?next=/catalog")
    await expect(alice.locator("h1")).to_have_text("Catalogo")
    await expect(alice.locator("#catalog-endpoints thead")).to_contain_text("Descrizione")
    await no_serious_violations(alice)
    await alice_context.close()
    for user in ("operator", "admin"):
        context, page_of = await sign_in(browser, stack, user)
        await expect(page_of.locator("header nav a[href='/catalog']")).to_have_count(1)
        await context.close()


#: Every page of each role (the request's and the audit trail's paths are filled in).
PAGES = {
    "admin": (
        "/dashboard",
        "/mappings/tasks",
        "/mappings/machines",
        "/mappings/endpoints",
        "/mappings/tasks/audit?key={task}",
        "/logs/enqueue",
        "/logs/ondemand",
        "/requests/{rid}",
        "/resources",
        "/notifications",
        "/my/requests",
        "/catalog",
    ),
    "operator": ("/resources", "/notifications", "/my/requests", "/catalog"),
    "alice": ("/my/requests", "/requests/{rid}", "/notifications", "/catalog"),
}


async def test_every_page_fits_a_phone_in_both_languages(
    stack: Stack,
    browser: Browser,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """At 390 px (a phone) no page is wider than the screen (wide tables scroll in their own
    box), in English and Italian, for every role; axe finds nothing serious there either."""
    token = await asyncio.to_thread(stack.token, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.ingest, timeout=15) as client:
        made = await client.post(
            "/v1/admin/task-mappings?force=true",
            json={
                "clearml_task_id": PARKING,
                "default_queue": "gpu-a100",
                "allowed_queues": ["cpu", "gpu-t4"],
                "description": "Parking occupancy forecast for the city's car parks, retrained",
            },
            headers=headers,
        )
        assert made.status_code == 201, made.text
        task = made.json()["task_id"]
        machine = await client.post(
            "/v1/admin/serving-machines",
            json={
                "serving_task_id": "7a" * 16,
                "base_urls": ["http://10.9.8.7:8080/serve", "http://10.9.8.8:8080/serve"],
                "description": "City models",
            },
            headers=headers,
        )
        assert machine.status_code == 201, machine.text
        mapped = await client.post(
            "/v1/admin/endpoint-mappings",
            json={
                "machine_id": machine.json()["machine_id"],
                "endpoint": "parking_free_slots_by_car_park",
                "description": "Free slots now",
            },
            headers=headers,
        )
        assert mapped.status_code == 201, mapped.text
        alice = {"Authorization": f"Bearer {await asyncio.to_thread(stack.token, 'alice')}"}
        accepted = await client.post("/v1/enqueue", json={"task_id": task}, headers=alice)
        assert accepted.status_code == 202, accepted.text
    rid = accepted.json()["request_id"]

    async def ended() -> Any:
        found = await api(stack, "alice", f"/v1/requests/{rid}")
        return found["status"] == "completed"

    await eventually(ended, timeout_s=45, what="the request's end")
    overflowing: list[Any] = []
    violations: list[Any] = []
    for user, paths in PAGES.items():
        context, page = await sign_in(browser, stack, user, width=390)
        for lang in ("en", "it"):
            await page.goto(f"{stack.console}/lang/{lang}?next=/")
            for path in paths:
                url = path.format(task=task, rid=rid)
                response = await page.goto(f"{stack.console}{url}")
                assert response is not None
                assert response.status == 200, (user, url, response.status)
                extra = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if extra > 0:
                    overflowing.append((user, lang, url, extra))
                found = await axe(page)
                if found:
                    violations.append((user, lang, url, found))
                name = url.strip("/").split("?")[0].replace("/", "-").replace(rid, "one")
                await shot(page, f"narrow-{user}-{lang}-{name}", tmp_path)
        await context.close()
    assert overflowing == []
    assert violations == []
