"""Sign-in, sign-out, the start page and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.console import i18n
from services.console.errors import SignInFailed
from services.console.oidc import new_login
from services.console.sessions import COOKIE, LOGIN_COOKIE, Session
from services.console.web import Posted, console_of, local_path, render

router = APIRouter()


def home_of(session: Session) -> str:
    """Where each role starts."""
    if session.is_admin:
        return "/dashboard"
    if session.is_operator:
        return "/resources"
    return "/my/requests"


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    settings = console_of(request).settings
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",  # sent on the top-level redirect back from Keycloak, never on a POST
        secure=settings.secure_cookies,
        path="/",
    )


@router.get("/")
async def home(request: Request) -> Response:
    """Signed in: the role's start page; otherwise a page with the sign-in button."""
    console = console_of(request)
    session = await console.sessions.get(request.cookies.get(COOKIE))
    if session is not None:
        return RedirectResponse(home_of(session), status_code=303)
    return render(request, "welcome.html", None)


@router.get("/login")
async def login(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """Off to Keycloak's login page (authorization code with PKCE)."""
    console = console_of(request)
    pending = new_login(local_path(next_path))
    key = await console.sessions.start_login(pending)
    response = RedirectResponse(await console.api.provider.authorize_url(pending), status_code=303)
    _cookie(response, request, LOGIN_COOKIE, key, 600)
    return response


@router.get("/auth/callback")
async def callback(
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=4000)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Keycloak's answer: the code for tokens, ingest says who it is, a new session."""
    console = console_of(request)
    pending = await console.sessions.finish_login(request.cookies.get(LOGIN_COOKIE), state)
    if error is not None or not code or pending is None:
        raise SignInFailed("The sign-in did not complete (or was started elsewhere); try again.")
    tokens = await console.api.provider.exchange(code, pending)
    caller = await console.api.me(tokens.access)
    session = Session(user=str(caller["user"]), grants=frozenset(caller["grants"]), tokens=tokens)
    key = await console.sessions.create(session)
    response = RedirectResponse(
        pending.next_path if pending.next_path != "/" else home_of(session), status_code=303
    )
    _cookie(response, request, COOKIE, key, int(console.settings.session_idle_s))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, session: Posted) -> Response:
    """End the console's session and Keycloak's (RP-initiated logout)."""
    console = console_of(request)
    await console.sessions.end(request.cookies.get(COOKIE))
    url = await console.api.provider.logout_url(session.tokens.id_token)
    response = RedirectResponse(url, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/lang/{code}")
async def switch_language(
    request: Request, code: str, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The language switch: a cookie, then back to the page."""
    response = RedirectResponse(local_path(next_path), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response
