"""The API docs at ingest's /docs render their operations in Chromium with nothing fetched from
outside 127.0.0.1 (FastAPI's default page loads Swagger UI from a CDN: blank on an offline
cluster)."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser

from tests.browser import browser, record_offsite  # noqa: F401 - pytest finds fixtures by name


async def test_docs_render_the_operations_offline(
    ingest: httpx.AsyncClient,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    page = await browser.new_page()
    try:
        offsite = record_offsite(page)
        await page.goto(f"{ingest.base_url}/docs")
        await page.wait_for_selector(".opblock", timeout=15_000)
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        assert "/v1/enqueue" in {p.replace("\u200b", "") for p in paths}
        assert len(paths) >= 10, paths
        assert await page.locator(".swagger-ui .info .title").inner_text() != ""
        assert offsite == []
    finally:
        await page.close()


async def test_docs_assets_are_the_projects_own(ingest: httpx.AsyncClient) -> None:
    page = (await ingest.get("/docs")).text
    assert "cdn" not in page.lower()
    script = await ingest.get("/_assets/vendor/swagger-ui/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (await ingest.get("/redoc")).status_code == 404  # ReDoc would load from a CDN too
