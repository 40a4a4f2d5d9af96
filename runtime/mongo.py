"""MongoDB client factory (pymongo's AsyncMongoClient) and error translation."""

from __future__ import annotations

import contextlib

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from runtime.settings import BusSettings

#: pymongo errors that mean "the server is away for now"; adapters turn them into RetriableError.
TRANSIENT_MONGO_ERRORS = (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

Doc = dict[str, object]


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
        await client.admin.command("ping")
    except TRANSIENT_MONGO_ERRORS:
        return False
    return True


def mongo_on(stack: contextlib.AsyncExitStack, settings: BusSettings) -> AsyncMongoClient[Doc]:
    """A client that the stack closes when it unwinds."""
    client = open_mongo(settings)
    stack.push_async_callback(client.close)
    return client
