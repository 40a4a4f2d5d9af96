"""Server-side sessions: the browser holds only a random id in an HttpOnly, SameSite=Lax cookie;
the tokens, the user's grants and the CSRF token stay in this process.

Kept in memory (bounded, least recently used first out, idle ones forgotten): one console process
serves a cluster's few dozen admins and operators, and a restart only asks them to sign in again
(Keycloak's own session makes that one click). Several console processes behind a balancer need
sticky sessions or a shared store; the class is the one place to change.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from services.console.oidc import PendingLogin, Tokens

COOKIE = "mlbus_console"
LOGIN_COOKIE = "mlbus_console_login"


@dataclass
class Session:
    """One signed-in person."""

    user: str
    grants: frozenset[str]
    tokens: Tokens
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    used: float = field(default_factory=time.monotonic)

    @property
    def is_admin(self) -> bool:
        """Sees and changes everything."""
        return "admin" in self.grants

    @property
    def is_operator(self) -> bool:
        """Sees resources and every notification (admins do too)."""
        return self.is_admin or "operator" in self.grants

    def csrf_ok(self, sent: str | None) -> bool:
        """The form's or header's CSRF token is this session's (compared in constant time)."""
        return bool(sent) and hmac.compare_digest(str(sent), self.csrf)


class Sessions:
    """Sessions and pending logins by their random ids."""

    def __init__(self, idle_s: float, max_sessions: int) -> None:
        self.idle_s, self.max_sessions = idle_s, max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._logins: OrderedDict[str, PendingLogin] = OrderedDict()

    def start_login(self, login: PendingLogin) -> str:
        """Remember a pending login; the id goes into the login cookie."""
        key = secrets.token_urlsafe(32)
        self._logins[key] = login
        while len(self._logins) > self.max_sessions:
            self._logins.popitem(last=False)
        return key

    def finish_login(self, key: str | None, state: str) -> PendingLogin | None:
        """The pending login of this browser (its cookie) with this state, used once."""
        login = self._logins.pop(key, None) if key else None
        if login is None or not hmac.compare_digest(login.state, state):
            return None
        if time.monotonic() - login.started > 600:  # a login page left open for ten minutes
            return None
        return login

    def create(self, session: Session) -> str:
        """Store a new session; its id goes into the session cookie."""
        key = secrets.token_urlsafe(32)
        self._sessions[key] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return key

    def get(self, key: str | None) -> Session | None:
        """The live session with this id, marked as used."""
        session = self._sessions.get(key) if key else None
        if session is None or key is None:
            return None
        now = time.monotonic()
        if now - session.used > self.idle_s:
            del self._sessions[key]
            return None
        session.used = now
        self._sessions.move_to_end(key)
        return session

    def end(self, key: str | None) -> Session | None:
        """Forget a session (logout)."""
        return self._sessions.pop(key, None) if key else None
