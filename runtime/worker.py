"""One worker layer: a worker declares what it consumes and what it publishes; this module owns
the rest (metrics endpoint, topics, producer, consumers, loops, dead letters, drain, shutdown).

A worker declares
- its subscriptions: a registry topic (`TopicSpec[P]`) and a handler of `Envelope[P]` (mypy
  rejects a handler of another payload), a failure hook, its consumer group, ordered by key
  (`ConsumerLoop`) or pipelined (`PipelinedConsumerLoop`), the loop's tuning;
- its publishers: a `Publisher[P]` per topic it writes, which stamps the envelope, keys the
  message with the topic's key function and sends it on the worker's one producer (which adds
  the trace headers).

The layer runs it in three steps, each where the services ran it by hand before:
`prepare(settings)` (metrics endpoint, topics) before any client opens; `start(stack)` (the
producer, publishers bound to it) after the service's own clients, so it closes before them;
`run(stop)` (one consumer per subscription, then every loop together). The consumers are
pushed on the same stack last, so when `stop` is set every loop finishes and commits its batch,
then the consumers leave their groups, then the producer flushes (dead letters, events), then
the service's clients close. When one loop fails, the others finish cleanly and the failure is
raised (`run_together`); an `isolated` loop that halts on dead letters stops alone.

The same worker runs on Kafka (`KafkaBus`, the default) or in memory
(`runtime.membroker.MemBroker`): same handlers, same loops, same codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from runtime import metrics
from runtime.consumer import ConsumerHalted, ConsumerLoop, LoopConfig, make_consumer
from runtime.kafka import client_auth, ensure_topics, partitions_of, start_producer
from runtime.lifecycle import run_together
from runtime.pipeline import PipelinedConsumerLoop
from runtime.settings import BusSettings
from schemas.base import Envelope, Model
from schemas.codec import encode, envelope_for
from schemas.topics import REGISTRY, TopicSpec

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Model)


class Producer(Protocol):
    """What the layer needs of a producer: aiokafka's (`runtime.kafka.TracedProducer`) or the
    in-memory broker's."""

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        """Hand a message over; the result is a future of its ack."""
        ...

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> Any:
        """Send and wait for the ack; KafkaError when the broker does not take it."""
        ...


class NotStarted(RuntimeError):
    """A publisher used before its worker started (no producer yet)."""


class Publisher(Generic[P]):
    """Publishes one topic's messages: envelope stamped with the topic's type and version, key
    from the topic's key function (or given, for a topic whose key is not in the message),
    sent on the worker's producer. Kafka's errors reach the caller, who knows what they mean
    for its message (retry it, fail it, or count and go on)."""

    def __init__(self, spec: TopicSpec[P], service: str) -> None:
        self.spec, self._service = spec, service
        self._producer: Producer | None = None
        self.topic = spec.name

    def bind(self, producer: Producer, prefix: str) -> None:
        """Send on `producer`, to the topic under the deployment's prefix."""
        self._producer, self.topic = producer, self.spec.named(prefix)

    def envelope(self, payload: P, **fields: Any) -> Envelope[P]:
        """The payload wrapped for this topic (`id`, `user`, `trace`... as keywords)."""
        return cast("Envelope[P]", envelope_for(self.spec, payload, **fields))

    async def send(self, payload: P, *, key: str | None = None, **fields: Any) -> Envelope[P]:
        """Publish and wait for the broker's ack; the envelope sent."""
        envelope = self.envelope(payload, **fields)
        await self._sender().send_and_wait(
            self.topic, encode(envelope), key=self._key(envelope, key)
        )
        self._count()
        return envelope

    async def hand(
        self, payload: P, *, key: str | None = None, **fields: Any
    ) -> asyncio.Future[Any]:
        """Hand the message to the producer without waiting; the future of its ack (to send
        many and gather, or to check in the background)."""
        envelope = self.envelope(payload, **fields)
        sent = await self._sender().send(self.topic, encode(envelope), key=self._key(envelope, key))
        future = cast("asyncio.Future[Any]", sent)
        future.add_done_callback(self._counted)
        return future

    async def delete(self, key: str) -> asyncio.Future[Any]:
        """Hand over a tombstone for `key` (a compacted topic forgets the key); its ack."""
        return cast(
            "asyncio.Future[Any]", await self._sender().send(self.topic, None, key=key.encode())
        )

    def _key(self, envelope: Envelope[P], key: str | None) -> bytes | None:
        if key is None and self.spec.key_of is not None:
            key = self.spec.key_of(envelope)
        return None if key is None else key.encode()

    def _sender(self) -> Producer:
        if self._producer is None:
            raise NotStarted(f"{self._service}: publisher of {self.spec.name} used before start")
        return self._producer

    def _count(self) -> None:
        metrics.MESSAGES_PUBLISHED.labels(self._service, self.spec.name).inc()

    def _counted(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._count()


def bound(spec: TopicSpec[P], producer: Producer, service: str, prefix: str = "") -> Publisher[P]:
    """A publisher already bound to a producer: for a process that only publishes (the agent:
    a Worker would add nothing), or a handler's unit test with its own producer double."""
    publisher = Publisher(spec, service)
    publisher.bind(producer, prefix)
    return publisher


@dataclass(frozen=True)
class Subscription(Generic[P]):
    """One topic a worker consumes, and how."""

    spec: TopicSpec[P]
    handler: Callable[[Envelope[P]], Awaitable[None]]
    group: str
    name: str
    on_failure: Callable[[Envelope[P], Exception], Awaitable[None]] | None = None
    pipelined: bool = False  # every message its own task (keys not ordered); else by key
    config: LoopConfig = field(default_factory=LoopConfig)
    isolated: bool = False  # halting on dead letters stops this loop only, not the worker
    # Kafka consumer options:
    listener: ConsumerRebalanceListener | None = None  # called after the drain on revocation
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    assign_all: bool = False  # every partition assigned, no group membership (one active copy)


class Bus(Protocol):
    """Where a worker's producer and consumers come from: Kafka, or the in-memory broker."""

    async def producer(self, stack: contextlib.AsyncExitStack, *, linger_ms: int) -> Producer:
        """A started producer that the stack stops."""
        ...

    async def consumer(
        self, stack: contextlib.AsyncExitStack, prefix: str, sub: Subscription[Any]
    ) -> Any:
        """A started consumer of `sub`'s topic that the stack stops."""
        ...


class KafkaBus:
    """The worker's clients on Kafka (aiokafka)."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings

    async def producer(self, stack: contextlib.AsyncExitStack, *, linger_ms: int) -> Producer:
        return cast("Producer", await start_producer(stack, self._settings, linger_ms=linger_ms))

    async def consumer(
        self, stack: contextlib.AsyncExitStack, prefix: str, sub: Subscription[Any]
    ) -> Any:
        settings, topic = self._settings, sub.spec.named(prefix)
        if sub.assign_all:
            consumer = AIOKafkaConsumer(  # make_consumer's, without the subscription
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=sub.group,
                client_id=settings.instance,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=100,
                max_poll_records=1000,
                **client_auth(settings),
            )
            partitions = await partitions_of(settings.kafka_bootstrap, topic)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
        else:
            consumer = make_consumer(
                settings,
                sub.spec,
                sub.group,
                session_timeout_ms=sub.session_timeout_ms,
                heartbeat_interval_ms=sub.heartbeat_interval_ms,
            )
            if sub.listener is not None:  # the batch in hand commits first, then the listener
                consumer.subscribe([topic], listener=consumer.revoke_drain.chained(sub.listener))
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        return consumer


async def prepare(settings: BusSettings, topics: Iterable[TopicSpec] = REGISTRY) -> None:
    """What a worker process does before any client opens: its metrics endpoint (the probes say
    "not ready" until its loops run), and the topics created where missing."""
    metrics.start_metrics(settings.metrics_port, settings.metrics_host)
    await ensure_topics(settings, topics)


class Worker:
    """A service's subscriptions and publishers, and the clients and loops that run them."""

    def __init__(
        self,
        service: str,
        settings: BusSettings,
        *,
        linger_ms: int = 0,
    ) -> None:
        self.service, self.settings, self._linger_ms = service, settings, linger_ms
        self.subscriptions: list[Subscription[Any]] = []
        self.publishers: list[Publisher[Any]] = []
        self._stack: contextlib.AsyncExitStack | None = None
        self._bus: Bus | None = None
        self.producer: Producer | None = None

    def publisher(self, spec: TopicSpec[P]) -> Publisher[P]:
        """The worker's publisher of `spec` (one per topic: asked again, the same one), bound to
        the worker's producer when it starts."""
        for known in self.publishers:
            if known.spec == spec:
                return cast("Publisher[P]", known)
        publisher = Publisher(spec, self.service)
        if self.producer is not None:
            publisher.bind(self.producer, self.settings.topic_prefix)
        self.publishers.append(publisher)
        return publisher

    def subscribe(
        self,
        spec: TopicSpec[P],
        handler: Callable[[Envelope[P]], Awaitable[None]],
        *,
        group: str,
        name: str | None = None,
        on_failure: Callable[[Envelope[P], Exception], Awaitable[None]] | None = None,
        pipelined: bool = False,
        config: LoopConfig | None = None,
        isolated: bool = False,
        listener: ConsumerRebalanceListener | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        assign_all: bool = False,
    ) -> None:
        """Consume `spec` with `handler` (of that topic's payload) in consumer group `group`;
        `name` names the loop (the topic's name by default)."""
        loop_name = name or spec.name
        if any(s.name == loop_name for s in self.subscriptions):
            raise ValueError(f"{self.service}: two subscriptions named {loop_name!r}")
        self.subscriptions.append(
            Subscription(
                spec,
                handler,
                group,
                loop_name,
                on_failure,
                pipelined,
                config or LoopConfig(),
                isolated,
                listener,
                session_timeout_ms,
                heartbeat_interval_ms,
                assign_all,
            )
        )

    async def start(self, stack: contextlib.AsyncExitStack, bus: Bus | None = None) -> None:
        """The producer, on the service's stack (after its clients: it flushes before they
        close), and the publishers bound to it."""
        self._stack, self._bus = stack, bus or KafkaBus(self.settings)
        self.producer = await self._bus.producer(stack, linger_ms=self._linger_ms)
        for publisher in self.publishers:
            publisher.bind(self.producer, self.settings.topic_prefix)

    async def run(
        self, stop: asyncio.Event, also: Mapping[str, Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """One consumer per subscription, then every loop (and `also`: pollers, timers) until
        `stop` is set; each loop's last batch is committed before this returns."""
        if self._stack is None or self._bus is None or self.producer is None:
            raise NotStarted(f"{self.service}: run before start")
        runs: dict[str, Coroutine[Any, Any, None]] = dict(also or {})
        try:
            for sub in self.subscriptions:
                consumer = await self._bus.consumer(self._stack, self.settings.topic_prefix, sub)
                loop = self._loop(sub, consumer).run(stop)
                runs[sub.name] = _isolated(loop, sub.name) if sub.isolated else loop
        except BaseException:
            for coro in runs.values():  # never started: closed, not left to warn
                coro.close()
            raise
        await run_together(runs, stop)

    def _loop(self, sub: Subscription[Any], consumer: Any) -> ConsumerLoop:
        kind = PipelinedConsumerLoop if sub.pipelined else ConsumerLoop
        return kind(
            service=self.service,
            settings=self.settings,
            spec=sub.spec,
            consumer=consumer,
            producer=self.producer,
            handler=sub.handler,
            on_failure=sub.on_failure,
            config=sub.config,
        )


async def _isolated(run: Coroutine[Any, Any, None], name: str) -> None:
    """A loop that dead-letters everything stops loudly, alone (a webhook's, not the notifier)."""
    try:
        await run
    except ConsumerHalted:
        log.exception("%s stopped; the worker's other loops go on", name)
