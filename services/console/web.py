"""What every page shares: the templates, the session of the request, role checks made on the
server for every page and action, the CSRF check of every state-changing request, and the
security headers (a CSP without inline script, `frame-ancestors 'none'`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.webassets import ASSETS_PATH, VENDOR, versioned
from services.console import i18n
from services.console.api import IngestApi
from services.console.errors import CsrfRefused, Forbidden, NotSignedIn
from services.console.sessions import COOKIE, Session, Sessions
from services.console.settings import ConsoleSettings

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",)),
    enable_async=False,
)
TEMPLATES.filters["tojson_attr"] = lambda value: json.dumps(value, separators=(",", ":"))
#: Where the pages' scripts and style sheets are served, each named by version in the pages.
STATIC = {"/static": HERE / "static", ASSETS_PATH: VENDOR}
TEMPLATES.globals["asset"] = versioned(STATIC)


@dataclass
class Console:
    """The process's wiring, on app.state.console."""

    settings: ConsoleSettings
    sessions: Sessions
    api: IngestApi


def console_of(request: Request) -> Console:
    """The process's wiring."""
    found: Console = request.app.state.console
    return found


def lang_of(request: Request) -> str:
    """The request's language."""
    return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))


def render(
    request: Request,
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page (or an htmx fragment) in the request's language."""
    lang = lang_of(request)
    console = console_of(request)
    page = TEMPLATES.get_template(template).render(
        request=request,
        session=session,
        lang=lang,
        t=i18n.translator(lang),
        st=i18n.state_label(lang),
        when=i18n.when,
        docs_url=console.settings.docs_url,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status)


async def session_of(request: Request) -> Session:
    """The signed-in session; NotSignedIn (a redirect to the login) otherwise."""
    session = await console_of(request).sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise NotSignedIn("Sign in first.")
    return session


async def admin_session(session: Annotated[Session, Depends(session_of)]) -> Session:
    """A session of an admin (403 otherwise)."""
    if not session.is_admin:
        raise Forbidden("This page needs the admin role.")
    return session


async def operator_session(session: Annotated[Session, Depends(session_of)]) -> Session:
    """A session of an operator or admin (403 otherwise)."""
    if not session.is_operator:
        raise Forbidden("This page needs the operator or admin role.")
    return session


async def csrf_checked(
    request: Request, session: Annotated[Session, Depends(session_of)]
) -> Session:
    """The session, if the request carries its CSRF token (form field or X-CSRF-Token header)."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if not session.csrf_ok(sent):
        raise CsrfRefused("The form is missing its security token; reload the page and retry.")
    return session


User = Annotated[Session, Depends(session_of)]
Admin = Annotated[Session, Depends(admin_session)]
Operator = Annotated[Session, Depends(operator_session)]
Posted = Annotated[Session, Depends(csrf_checked)]


def local_path(candidate: str | None, default: str = "/") -> str:
    """`candidate` if it is a path on this site (no scheme, no host, no `//`), else `default`:
    a redirect target from a query is never another site."""
    if not candidate or not candidate.startswith("/") or candidate.startswith("//"):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or "\\" in candidate:
        return default
    return candidate


def csp(issuer: str) -> str:
    """The pages' Content-Security-Policy: own scripts and styles only (no inline, no eval),
    never framed; forms may post here and to the realm (logout redirects there)."""
    parts = urlsplit(issuer)
    realm_origin = f"{parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self' {realm_origin}; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """CSP, no framing, no referrer to other sites, on every answer of the console."""

    def __init__(self, app: ASGIApp, *, policy: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(self.headers)
            await send(message)

        await self.app(scope, receive, send_with)
