"""Kafka producer factory and topic creation from the registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from runtime import tracing
from runtime.settings import BusSettings
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)


class Sender(Protocol):
    """What a publisher needs of a producer: aiokafka's, or runtime.rdkafka's."""

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        """Send and wait for the broker's ack; aiokafka's KafkaError when it does not take it."""
        ...


def client_auth(settings: BusSettings) -> dict[str, Any]:
    """aiokafka's security options (SASL with a Kafka user where the cluster has ACLs; nothing
    for a plain local broker), for every client a process opens."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_username,
            "sasl_plain_password": settings.kafka_password.get_secret_value(),
        }
    if settings.kafka_security_protocol.endswith("SSL"):
        options["ssl_context"] = ssl.create_default_context()
    return options


class TracedProducer(AIOKafkaProducer):  # type: ignore[misc]
    """aiokafka's producer, carrying the trace (runtime/tracing.py): every message sent inside a
    span carries its `traceparent` header, and a send that is awaited is a PRODUCER span.
    With tracing off, one check a call."""

    async def send(  # noqa: PLR0917 - aiokafka's own signature
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> Any:
        """aiokafka's `send`, with the trace context in the headers."""
        if tracing.on():
            headers = tracing.inject(headers)
        return await super().send(topic, value, key, partition, timestamp_ms, headers)

    async def send_and_wait(  # noqa: PLR0917 - aiokafka's own signature
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> Any:
        """aiokafka's `send_and_wait`, as a PRODUCER span when tracing is on."""
        if not tracing.on():
            return await super().send_and_wait(topic, value, key, partition, timestamp_ms, headers)
        with tracing.span(f"publish {topic}", kind=tracing.PRODUCER, attributes=_attrs(topic)):
            return await super().send_and_wait(topic, value, key, partition, timestamp_ms, headers)


def _attrs(topic: str) -> dict[str, str]:
    return {"messaging.system": "kafka", "messaging.destination.name": topic}


def make_producer(settings: BusSettings, *, linger_ms: int = 0) -> AIOKafkaProducer:
    """An idempotent producer (acks=all). Linger 0 by default: mlbus is latency-first; a
    high-volume publisher (heartbeats) may pass a few ms to batch."""
    return TracedProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.instance,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        request_timeout_ms=15_000,
        **client_auth(settings),
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
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.instance}-admin",
        **client_auth(settings),
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
