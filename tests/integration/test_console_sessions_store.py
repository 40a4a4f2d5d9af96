"""The console's session store on the real MongoDB-compatible server: expiry is the document's
own (a TTL index or not), idle expiry moves forward with use, a pending login is used once
however many copies race for it, refreshed tokens reach the other copies."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from schemas.collections import CONSOLE_SESSIONS as COLLECTION
from services.console.oidc import Tokens, new_login
from services.console.sessions import MongoSessions, Session, key_of


def _session() -> Session:
    return Session("alice", frozenset({"user"}), Tokens("access", "refresh", "id", 100.0))


async def test_an_expired_session_is_gone_even_without_a_ttl_index(mongo_db: Any) -> None:
    sessions = MongoSessions(mongo_db, idle_s=3600)
    await sessions.prepare()
    secret = await sessions.create(_session())
    assert await sessions.get(secret) is not None
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await mongo_db[COLLECTION].update_one({"_id": key_of(secret)}, {"$set": {"expires_at": past}})
    assert await sessions.get(secret) is None
    # the next sign-in clears it from the collection
    await sessions.create(_session())
    assert await mongo_db[COLLECTION].count_documents({"_id": key_of(secret)}) == 0


async def test_use_moves_an_idle_session_forward(mongo_db: Any) -> None:
    sessions = MongoSessions(mongo_db, idle_s=3600)
    secret = await sessions.create(_session())
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    await mongo_db[COLLECTION].update_one({"_id": key_of(secret)}, {"$set": {"expires_at": soon}})
    assert await sessions.get(secret) is not None
    doc = await mongo_db[COLLECTION].find_one({"_id": key_of(secret)})
    assert doc["expires_at"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3000)


async def test_a_login_is_finished_once_by_racing_copies(mongo_db: Any) -> None:
    copies = [MongoSessions(mongo_db, idle_s=3600) for _ in range(4)]
    login = new_login("/catalog")
    secret = await copies[0].start_login(login)
    found = await asyncio.gather(*(c.finish_login(secret, login.state) for c in copies))
    assert [f for f in found if f is not None] == [login]


async def test_refreshed_tokens_reach_every_copy(mongo_db: Any) -> None:
    one, two = MongoSessions(mongo_db, idle_s=3600), MongoSessions(mongo_db, idle_s=3600)
    secret = await one.create(_session())
    session = await one.get(secret)
    assert session is not None
    session.tokens = Tokens("access-2", "refresh-2", "id", 200.0)
    await one.save_tokens(session)
    seen = await two.get(secret)
    assert seen is not None
    assert seen.tokens == session.tokens
    assert seen.csrf == session.csrf
