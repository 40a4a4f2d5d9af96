"""Server-side sessions: the browser holds only a random secret in an HttpOnly, SameSite=Lax
cookie; the tokens, the user's grants and the CSRF token stay on the server.

They live in MongoDB (`console_sessions`), so that every copy of the console serves every
signed-in person, and a sign-in started on one copy may finish on another. Each document is
keyed by the SHA-256 of the cookie's secret, never the secret itself: a reader of the database
cannot turn a document into a cookie. Expiry is the document's `expires_at`: a TTL index removes
what has expired (on servers that keep TTL indexes; FerretDB 1.x does not), every read ignores
it anyway, and a new session clears expired ones, so the guarantee never rests on the index.
An idle session's expiry moves forward at most once a minute (one write a minute per person, not
one per page).

`MemorySessions` is the same contract in a dict, for unit tests.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from runtime.mongo import Doc, StoreUnavailable, ping, store_errors
from schemas.collections import CONSOLE_SESSIONS as COLLECTION
from services.console.errors import SessionsUnavailable
from services.console.oidc import PendingLogin, Tokens

log = logging.getLogger(__name__)
COOKIE = "mlbus_console"
LOGIN_COOKIE = "mlbus_console_login"
LOGIN_TTL_S = 600.0  # a login page left open for ten minutes starts again
_TOUCH_EVERY_S = 60.0
T = TypeVar("T")


@dataclass
class Session:
    """One signed-in person. `key` is the store's id of it (the hash of the cookie's secret)."""

    user: str
    grants: frozenset[str]
    tokens: Tokens
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    key: str = ""

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


def key_of(secret: str) -> str:
    """The store's id for a cookie's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _state_ok(login: PendingLogin | None, state: str) -> PendingLogin | None:
    if login is None or not hmac.compare_digest(login.state, state):
        return None
    if time.time() - login.started > LOGIN_TTL_S:
        return None
    return login


class Sessions(abc.ABC):
    """Sessions and pending logins by the random secrets their cookies hold."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s

    async def prepare(self) -> None:  # noqa: B027 - a store without indexes has nothing to do
        """Make the store ready (indexes)."""

    async def ready(self) -> bool:
        """The store answers (the readiness probe)."""
        return True

    async def start_login(self, login: PendingLogin) -> str:
        """Remember a pending login; the secret goes into the login cookie."""
        secret = secrets.token_urlsafe(32)
        await self._put_login(key_of(secret), login)
        return secret

    async def finish_login(self, secret: str | None, state: str) -> PendingLogin | None:
        """The pending login of this browser (its cookie) with this state, used once."""
        if not secret:
            return None
        return _state_ok(await self._take_login(key_of(secret)), state)

    async def create(self, session: Session) -> str:
        """Store a new session; the secret goes into the session cookie."""
        secret = secrets.token_urlsafe(32)
        await self.put(secret, session)
        return secret

    async def get(self, secret: str | None) -> Session | None:
        """The live session of this cookie, its idle expiry moved forward."""
        return await self._get(key_of(secret)) if secret else None

    async def end(self, secret: str | None) -> None:
        """Forget a session (logout), on every copy of the console."""
        if secret:
            await self._end(key_of(secret))

    @abc.abstractmethod
    async def put(self, secret: str, session: Session) -> None:
        """Store `session` under a given secret (create() draws a fresh one; a benchmark that
        signs people in without a browser brings its own)."""

    @abc.abstractmethod
    async def save_tokens(self, session: Session) -> None:
        """Keep a session's refreshed tokens."""

    @abc.abstractmethod
    async def _put_login(self, key: str, login: PendingLogin) -> None: ...

    @abc.abstractmethod
    async def _take_login(self, key: str) -> PendingLogin | None: ...

    @abc.abstractmethod
    async def _get(self, key: str) -> Session | None: ...

    @abc.abstractmethod
    async def _end(self, key: str) -> None: ...


class MongoSessions(Sessions):
    """Sessions in MongoDB, shared by every copy of the console."""

    def __init__(self, db: AsyncDatabase[Doc], idle_s: float) -> None:
        super().__init__(idle_s)
        self.db = db
        self.docs: AsyncCollection[Doc] = db[COLLECTION]

    async def prepare(self) -> None:
        """The TTL index on `expires_at` (best effort: reads check the expiry themselves)."""
        try:
            with store_errors():
                await self.docs.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
        except OperationFailure as exc:  # a server without TTL indexes
            log.info("no TTL index on %s (%s): expired sessions go at sign-in", COLLECTION, exc)
        except StoreUnavailable as exc:
            log.warning("MongoDB did not answer (%s): the TTL index is made later", exc)

    async def ready(self) -> bool:
        """MongoDB answers a ping."""
        return await ping(self.db.client)

    async def put(self, secret: str, session: Session) -> None:
        session.key = key_of(secret)
        now = _now()
        doc: Doc = {
            "_id": session.key,
            "kind": "session",
            "user": session.user,
            "grants": sorted(session.grants),
            "csrf": session.csrf,
            **_tokens_doc(session.tokens),
            "expires_at": now + dt.timedelta(seconds=self.idle_s),
        }
        await self._call(self.docs.insert_one, doc)
        await self._call(self.docs.delete_many, {"expires_at": {"$lt": now}})

    async def save_tokens(self, session: Session) -> None:
        await self._call(
            self.docs.update_one, {"_id": session.key}, {"$set": _tokens_doc(session.tokens)}
        )

    async def _put_login(self, key: str, login: PendingLogin) -> None:
        doc: Doc = {
            "_id": key,
            "kind": "login",
            "state": login.state,
            "nonce": login.nonce,
            "verifier": login.verifier,
            "next_path": login.next_path,
            "started": login.started,
            "expires_at": _now() + dt.timedelta(seconds=LOGIN_TTL_S),
        }
        await self._call(self.docs.insert_one, doc)

    async def _take_login(self, key: str) -> PendingLogin | None:
        # find-and-delete: of two callbacks with one login cookie, one finishes the sign-in
        doc = await self._call(self.docs.find_one_and_delete, {"_id": key, "kind": "login"})
        if doc is None:
            return None
        return PendingLogin(
            str(doc["state"]),
            str(doc["nonce"]),
            str(doc["verifier"]),
            str(doc["next_path"]),
            _num(doc["started"]),
        )

    async def _get(self, key: str) -> Session | None:
        now = _now()
        query = {"_id": key, "kind": "session", "expires_at": {"$gt": now}}
        doc = await self._call(self.docs.find_one, query)
        if doc is None:
            return None
        expires_at = doc["expires_at"]
        assert isinstance(expires_at, dt.datetime)
        if expires_at - now < dt.timedelta(seconds=self.idle_s - _TOUCH_EVERY_S):
            moved = {"$set": {"expires_at": now + dt.timedelta(seconds=self.idle_s)}}
            await self._call(self.docs.update_one, {"_id": key}, moved)
        return Session(
            user=str(doc["user"]),
            grants=frozenset(str(g) for g in _list(doc.get("grants"))),
            tokens=Tokens(
                access=str(doc["access"]),
                refresh=_opt(doc.get("refresh")),
                id_token=_opt(doc.get("id_token")),
                access_expires_at=_num(doc["access_expires_at"]),
            ),
            csrf=str(doc["csrf"]),
            key=key,
        )

    async def _end(self, key: str) -> None:
        await self._call(self.docs.delete_one, {"_id": key})

    async def _call(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            with store_errors():
                return await method(*args)
        except StoreUnavailable as exc:
            raise SessionsUnavailable("The session store did not answer; retry shortly.") from exc


class MemorySessions(Sessions):
    """The same contract in this process's memory (unit tests)."""

    def __init__(self, idle_s: float) -> None:
        super().__init__(idle_s)
        self._sessions: dict[str, tuple[Session, float]] = {}
        self._logins: dict[str, PendingLogin] = {}

    async def put(self, secret: str, session: Session) -> None:
        session.key = key_of(secret)
        self._sessions[session.key] = (replace(session), time.monotonic())

    async def save_tokens(self, session: Session) -> None:
        if session.key in self._sessions:
            stored, used = self._sessions[session.key]
            stored.tokens = session.tokens
            self._sessions[session.key] = (stored, used)

    async def _put_login(self, key: str, login: PendingLogin) -> None:
        self._logins[key] = login

    async def _take_login(self, key: str) -> PendingLogin | None:
        return self._logins.pop(key, None)

    async def _get(self, key: str) -> Session | None:
        found = self._sessions.get(key)
        now = time.monotonic()
        if found is None or now - found[1] > self.idle_s:
            self._sessions.pop(key, None)
            return None
        self._sessions[key] = (found[0], now)
        return replace(found[0])

    async def _end(self, key: str) -> None:
        self._sessions.pop(key, None)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tokens_doc(tokens: Tokens) -> Doc:
    return {
        "access": tokens.access,
        "refresh": tokens.refresh,
        "id_token": tokens.id_token,
        "access_expires_at": tokens.access_expires_at,
    }


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
