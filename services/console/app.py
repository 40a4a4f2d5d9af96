"""Wiring of the console: one httpx client (to ingest and Keycloak) opened in the lifespan, the
sessions, the routes, the error pages, static files (its own and the vendored htmx and uPlot),
compression and the security headers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from runtime.http import EdgeMiddleware, install_probes
from runtime.webassets import ASSETS_PATH, VENDOR
from services.console import handlers, logpages, mappings, pages
from services.console.api import IngestApi
from services.console.errors import ConsoleError, NotSignedIn
from services.console.oidc import Provider
from services.console.sessions import COOKIE, Sessions
from services.console.settings import ConsoleSettings
from services.console.web import HERE, Console, SecurityHeaders, console_of, csp, render

SERVICE = "console"


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The ASGI app for one console process."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        timeout = httpx.Timeout(settings.api_timeout_s)
        async with (
            httpx.AsyncClient(base_url=settings.ingest_url, timeout=timeout, limits=limits) as api,
            httpx.AsyncClient(timeout=timeout) as idp,
        ):
            app.state.console = Console(
                settings,
                Sessions(settings.session_idle_s, settings.max_sessions),
                IngestApi(api, Provider(settings, idp)),
            )
            yield

    app = FastAPI(
        title="mlbus console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # pages, not an API: the API and its docs are ingest's
        redirect_slashes=False,
    )
    for router in (handlers.router, pages.router, mappings.router, logpages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount(ASSETS_PATH, StaticFiles(directory=VENDOR), name="vendor-assets")

    @app.exception_handler(ConsoleError)
    async def on_console_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleError)
        if isinstance(exc, NotSignedIn):
            return _to_login(request)
        session = console_of(request).sessions.get(request.cookies.get(COOKIE))
        return render(request, "error.html", session, status=exc.status, error=exc)

    async def ingest_ready() -> bool:
        console: Console | None = getattr(app.state, "console", None)
        if console is None:
            return False
        try:
            found = await console.api.http.get("/healthz", timeout=2.0)
        except httpx.HTTPError:
            return False
        return found.status_code == 200

    install_probes(app, {"ingest": ingest_ready})
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.add_middleware(SecurityHeaders, policy=csp(settings.issuer))
    app.add_middleware(EdgeMiddleware, service=SERVICE, max_body=256 * 1024)
    return app


def _to_login(request: Request) -> Response:
    """No session: a page goes to the login (and comes back); htmx is told to go there."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={target}" if request.method == "GET" else "/login"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": url})
    if request.method != "GET":
        return Response("Sign in first.", status_code=401, media_type="text/plain")
    return RedirectResponse(url, status_code=303)
