"""Browser assets the services serve themselves: clusters run offline, so no page may load a
script or a style sheet from a CDN.

`vendor/` holds the few files of the npm packages that deploy/web/package-lock.json pins, with
their licences (refreshed by deploy/web/vendor.sh): Swagger UI for the API docs, htmx and uPlot
for the console.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR = Path(__file__).parent / "vendor"
#: Where install_api_docs mounts the vendored files.
ASSETS_PATH = "/_assets/vendor"


def install_api_docs(app: FastAPI, *, docs_path: str = "/docs") -> None:
    """Swagger UI at `docs_path` from the project's own files (FastAPI's default loads it from a
    CDN: a blank page offline). Create the app with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=VENDOR), name="vendor-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    app.add_api_route(docs_path, docs, include_in_schema=False, response_class=HTMLResponse)
