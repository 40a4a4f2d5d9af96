"""MongoDB client factory (pymongo's AsyncMongoClient) and error translation.

Every service's store translates pymongo's "server away" errors here, and only here:

    RetriableError
    ├── ServerAway
    │   └── StoreUnavailable    refused, timed out, no server selected, connection dropped:
    │                           waited for without using up a message's attempts
    └── StoreRefused            the server answered but refused a write (not a duplicate):
                                retried within the bound, then the message fails

    with store_errors():        # any pymongo transient error leaves as StoreUnavailable
        doc = await collection.find_one(...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from runtime.retry import RetriableError, ServerAway
from runtime.settings import BusSettings
from schemas.collections import BY_NAME

#: pymongo errors that mean "the server is away for now"; adapters turn them into RetriableError.
TRANSIENT_MONGO_ERRORS = (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

Doc = dict[str, object]


class StoreUnavailable(ServerAway):
    """MongoDB did not answer (the one definition; each service's error tree re-exports it).
    A ServerAway: nothing is wrong with the message, so an outage longer than the retry bound
    leaves it uncommitted rather than dead-lettered."""


class StoreRefused(RetriableError):
    """MongoDB answered, but refused a write (not as a duplicate): retried within the bound,
    then the message fails (unlike StoreUnavailable, this is about the message)."""


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Turns pymongo's transient errors raised inside the block into StoreUnavailable."""
    try:
        yield
    except TRANSIENT_MONGO_ERRORS as exc:
        raise StoreUnavailable(str(exc)) from exc


def open_mongo(settings: BusSettings) -> AsyncMongoClient[Doc]:
    """A client with short, explicit timeouts: a missing server shows up in seconds, not minutes."""
    return AsyncMongoClient(
        settings.mongo_uri.get_secret_value(),
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        socketTimeoutMS=30_000,
        tz_aware=True,
        appname=settings.instance,
    )


def database(client: AsyncMongoClient[Doc], settings: BusSettings) -> AsyncDatabase[Doc]:
    """The service's database."""
    return client[settings.mongo_db]


async def ping(client: AsyncMongoClient[Doc]) -> bool:
    """True when the server answers."""
    try:
        with store_errors():
            await client.admin.command("ping")
    except StoreUnavailable:
        return False
    return True


async def is_ferretdb(db: AsyncDatabase[Doc]) -> bool:
    """Whether the server is FerretDB (its buildInfo says so), whose 1.x updates are not atomic
    across connections on SQLite (FerretDB issue #3040). Unknown (the server away): True, the
    careful answer."""
    try:
        return await server_is_ferretdb(db)
    except StoreUnavailable:
        return True


async def server_is_ferretdb(db: AsyncDatabase[Doc]) -> bool:
    """Whether the server is FerretDB; StoreUnavailable when it does not answer."""
    with store_errors():
        info = await db.client.admin.command("buildInfo")
    return "ferretdbVersion" in info


def mongo_on(stack: contextlib.AsyncExitStack, settings: BusSettings) -> AsyncMongoClient[Doc]:
    """A client that the stack closes when it unwinds."""
    client = open_mongo(settings)
    stack.push_async_callback(client.close)
    return client


async def create_indexes(db: AsyncDatabase[Doc], name: str) -> None:
    """Create the secondary indexes schemas/collections.py declares for collection `name`."""
    for keys in BY_NAME[name].indexes:
        await db[name].create_index(list(keys))
