"""Wiring of the console: the httpx clients (to ingest and Keycloak) and the MongoDB client (the
sessions, shared by every copy) opened in the lifespan, the routes, the error pages, static files
(its own and the vendored htmx and uPlot), compression and the security headers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import RedirectResponse, Response

from runtime.http import EdgeMiddleware, install_probes
from runtime.mongo import database, mongo_on
from runtime.webassets import CachedFiles
from services.console import handlers, logpages, mappings, pages
from services.console.api import IngestApi
from services.console.errors import ConsoleError, NotSignedIn
from services.console.oidc import Provider
from services.console.sessions import COOKIE, MongoSessions
from services.console.settings import ConsoleSettings
from services.console.web import (
    STATIC,
    TEMPLATES,
    Console,
    SecurityHeaders,
    console_of,
    csp,
    render,
)

SERVICE = "console"


async def warm_up(api: httpx.AsyncClient) -> None:
    """What the first page would otherwise pay: every template compiled, a connection to ingest
    open (a first dashboard load took ~200 ms more than the next ones)."""
    for name in TEMPLATES.list_templates():
        TEMPLATES.get_template(name)
    with contextlib.suppress(httpx.HTTPError):  # ingest not up yet: the first page connects
        await api.get("/healthz", timeout=2.0)


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The ASGI app for one console process."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        timeout = httpx.Timeout(settings.api_timeout_s)
        # The clients close in reverse: the HTTP ones before MongoDB's, whose sessions they serve.
        async with contextlib.AsyncExitStack() as stack:
            sessions = MongoSessions(
                database(mongo_on(stack, settings), settings), settings.session_idle_s
            )
            await sessions.prepare()
            api = await stack.enter_async_context(
                httpx.AsyncClient(base_url=settings.ingest_url, timeout=timeout, limits=limits)
            )
            idp = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
            app.state.console = Console(
                settings, sessions, IngestApi(api, Provider(settings, idp), sessions)
            )
            await warm_up(api)
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
    for prefix, directory in STATIC.items():
        app.mount(prefix, CachedFiles(directory=directory), name=prefix.strip("/"))

    @app.exception_handler(ConsoleError)
    async def on_console_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleError)
        if isinstance(exc, NotSignedIn):
            return _to_login(request)
        try:
            session = await console_of(request).sessions.get(request.cookies.get(COOKIE))
        except ConsoleError:  # the store is away too: the error page without the menu
            session = None
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

    async def sessions_ready() -> bool:
        console: Console | None = getattr(app.state, "console", None)
        return console is not None and await console.sessions.ready()

    install_probes(app, {"ingest": ingest_ready, "sessions": sessions_ready})
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
