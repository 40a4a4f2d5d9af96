"""Browser assets the services serve themselves: clusters run offline, so no page may load a
script or a style sheet from a CDN.

`vendor/` holds the few files of the npm packages that deploy/web/package-lock.json pins, with
their licences (refreshed by deploy/web/vendor.sh): Swagger UI for the API docs, htmx and uPlot
for the console.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

VENDOR = Path(__file__).parent / "vendor"
#: Where install_api_docs mounts the vendored files.
ASSETS_PATH = "/_assets/vendor"


#: A year: the longest a cache keeps anything (RFC 9111 suggests no more).
IMMUTABLE = "public, max-age=31536000, immutable"


class CachedFiles(StaticFiles):
    """Static files whose pages name them by version (`versioned`): a URL with `?v=` is that
    file's content for ever, so the browser keeps it a year and never asks again; without one,
    it asks every time (`no-cache`: a 304 when unchanged). A page load then costs no round trip
    for its scripts and style sheets, however busy the server."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            pinned = b"v=" in scope.get("query_string", b"")
            response.headers["Cache-Control"] = IMMUTABLE if pinned else "no-cache"
        return response


def versioned(mounts: dict[str, Path]) -> Callable[[str], str]:
    """`url -> url?v=<hash of the file's content>` for files under these mounts (URL prefix ->
    directory), hashed once per process. A URL outside them is an error in a template."""

    @cache
    def version(url: str) -> str:
        for prefix, directory in mounts.items():
            if url.startswith(prefix + "/"):
                digest = hashlib.sha256((directory / url[len(prefix) + 1 :]).read_bytes())
                return f"{url}?v={digest.hexdigest()[:12]}"
        raise ValueError(f"{url} is not under {sorted(mounts)}")

    return version


def install_api_docs(app: FastAPI, *, docs_path: str = "/docs") -> None:
    """Swagger UI at `docs_path` from the project's own files (FastAPI's default loads it from a
    CDN: a blank page offline). Create the app with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_PATH, CachedFiles(directory=VENDOR), name="vendor-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    app.add_api_route(docs_path, docs, include_in_schema=False, response_class=HTMLResponse)
