"""Test tiers follow the folder: tests/unit, tests/integration, tests/e2e get their marker here.

Integration and e2e tests share one real Kafka broker and one FerretDB for the session (started
by the project's own launchers, exactly as `mlbus up` starts them); each test gets its own topic
prefix, consumer groups and database, so tests never see each other's messages.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mlbus.devissuer import SigningKey, create_app
from tests.support import Issuer, ThreadedServer

if TYPE_CHECKING:
    from mlbus.servers.keycloak import KeycloakServer

_TIERS = ("unit", "integration", "e2e", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@dataclass(frozen=True)
class Servers:
    """Where the session's real servers listen."""

    kafka_bootstrap: str
    mongo_uri: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """Real Kafka (KRaft) and FerretDB for the session; reuse running ones when
    MLBUS_TEST_KAFKA and MLBUS_TEST_MONGO are set."""
    if os.environ.get("MLBUS_TEST_KAFKA") and os.environ.get("MLBUS_TEST_MONGO"):
        yield Servers(os.environ["MLBUS_TEST_KAFKA"], os.environ["MLBUS_TEST_MONGO"])
        return
    from mlbus.servers.ferretdb import FerretDBServer
    from mlbus.servers.kafka import KafkaServer

    home = Path(tempfile.mkdtemp(prefix="mlbus-test-"))
    kafka, mongo = KafkaServer(home / "kafka"), FerretDBServer(home / "ferretdb")
    kafka.start()
    mongo.start()
    try:
        yield Servers(kafka.bootstrap, mongo.uri)
    finally:
        kafka.stop()
        mongo.stop()


@dataclass(frozen=True)
class Bus:
    """One test's private slice of the servers: its topic prefix and database."""

    kafka_bootstrap: str
    mongo_uri: str
    topic_prefix: str
    mongo_db: str

    def settings(self) -> dict[str, Any]:
        """Keyword arguments for any BusSettings subclass."""
        return {
            "kafka_bootstrap": self.kafka_bootstrap,
            "mongo_uri": self.mongo_uri,
            "topic_prefix": self.topic_prefix,
            "mongo_db": self.mongo_db,
        }

    def env(self) -> dict[str, str]:
        """The same, as environment variables for a service subprocess."""
        return {f"MLBUS_{k.upper()}": v for k, v in self.settings().items()}


@pytest.fixture
def bus(servers: Servers) -> Bus:
    tag = uuid.uuid4().hex[:10]
    return Bus(servers.kafka_bootstrap, servers.mongo_uri, f"t{tag}.", f"t{tag}")


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    """A token issuer with Keycloak's layout, serving its JWKS over real HTTP."""
    key = SigningKey.generate()
    server = ThreadedServer(lambda url: create_app(key, url), "issuer", factory=True).start()
    try:
        yield Issuer(key, server.url)
    finally:
        server.stop()


@pytest.fixture
async def mongo_db(bus: Bus) -> AsyncIterator[object]:
    """The test's database, dropped afterwards."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(bus.mongo_uri, tz_aware=True)
    try:
        yield client[bus.mongo_db]
    finally:
        await client.drop_database(bus.mongo_db)
        await client.close()


@pytest.fixture(scope="session")
def keycloak() -> Iterator[KeycloakServer]:
    """The real Keycloak with deploy/keycloak's realm, started on first use only (once per
    session; ~15-35 s on two cores) and stopped at the end. Most tests need just a token: they
    take `issuer`."""
    from mlbus.servers.keycloak import KeycloakServer

    home = Path(tempfile.mkdtemp(prefix="mlbus-keycloak-"))
    server = KeycloakServer(home)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
