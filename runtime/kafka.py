"""Kafka producer factory and topic creation from the registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from runtime.settings import BusSettings
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)


class Sender(Protocol):
    """What a publisher needs of a producer: aiokafka's, or runtime.rdkafka's."""

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        """Send and wait for the broker's ack; aiokafka's KafkaError when it does not take it."""
        ...


def make_producer(settings: BusSettings, *, linger_ms: int = 0) -> AIOKafkaProducer:
    """An idempotent producer (acks=all). Linger 0 by default: mlbus is latency-first; a
    high-volume publisher (heartbeats) may pass a few ms to batch."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.instance,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        request_timeout_ms=15_000,
    )


def _new_topic(spec: TopicSpec, prefix: str, replication: int) -> NewTopic:
    configs: dict[str, str] = {}
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return NewTopic(spec.named(prefix), spec.partitions, replication, topic_configs=configs)


async def ensure_topics(
    settings: BusSettings, specs: Iterable[TopicSpec], *, replication: int = 1
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id=f"{settings.instance}-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            _new_topic(s, settings.topic_prefix, replication)
            for s in specs
            if s.named(settings.topic_prefix) not in existing
        ]
        if missing:
            # another instance may create one between our list and our create
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            await _until_led(admin, [t.name for t in missing])
            log.info("created topics: %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 10.0) -> None:
    """Wait until every new topic has a leader for each partition in the broker's metadata, so
    that a client started next finds it (instead of logging "not found in cluster metadata"
    until the broker catches up)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        if all(
            d.get("error_code") == 0
            and d.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
            for d in described
        ):
            return
        if asyncio.get_running_loop().time() > deadline:
            log.warning("topics not led after %.0f s: %s", timeout_s, ", ".join(names))
            return
        await asyncio.sleep(0.05)


async def start_producer(
    stack: contextlib.AsyncExitStack, settings: BusSettings, *, linger_ms: int = 0
) -> AIOKafkaProducer:
    """A started producer that the stack stops (flushing what is in flight) when it unwinds."""
    producer = make_producer(settings, linger_ms=linger_ms)
    await producer.start()
    stack.push_async_callback(producer.stop)
    return producer


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """The topic's partitions, asked of the broker (a consumer that assigns partitions itself,
    without subscribing, does not learn them from its own metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(int(p["partition"]) for d in described for p in d.get("partitions", []))
