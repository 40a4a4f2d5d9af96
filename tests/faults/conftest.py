"""The fault tier: the real servers below mlbus stopped, paused and started again mid-burst.

These tests take servers away, so they never share the session's Kafka and FerretDB: the tier
starts its own pair (once for the tier, on the same ports and data after every outage) and the
`servers` fixture of this folder names them, so `bus` and every service fixture use them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlbus.servers.ferretdb import FerretDBServer
from mlbus.servers.kafka import KafkaServer
from tests.conftest import Servers
from tests.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    node,
    parking_task_id,
    sim,
)


@dataclass(frozen=True)
class Below:
    """The tier's own servers, to take away and bring back."""

    kafka: KafkaServer
    mongo: FerretDBServer


@pytest.fixture(scope="package")
def below() -> Iterator[Below]:
    home = Path(tempfile.mkdtemp(prefix="mlbus-faults-"))
    kafka, mongo = KafkaServer(home / "kafka"), FerretDBServer(home / "ferretdb")
    try:
        kafka.start()
        mongo.start()
        yield Below(kafka, mongo)
    finally:
        kafka.stop()
        mongo.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="package")
def servers(below: Below) -> Servers:
    return Servers(below.kafka.bootstrap, below.mongo.uri)
