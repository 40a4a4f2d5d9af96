"""The consumer loop every worker runs.

Guarantees, in order of importance:
- an offset is committed only after the handler's effect is durable (at-least-once delivery;
  handlers make it exactly-once in effect through the request id);
- a message that cannot be handled (schema error, permanent error, or a transient error that
  outlived its retries) goes to the dead-letter topic with its original bytes and the reason,
  *then* its offset is committed: nothing is dropped, nothing blocks the partition;
- too many dead letters on a partition, in a row or as a share of its recent messages, means
  something is broken beyond one message: the loop stops loudly (ConsumerHalted) instead of
  dead-lettering the whole topic (`DeadLetterLimit`, as arroyo's `DlqLimit`);
- messages with the same key are handled in order; different keys run concurrently;
- on stop, the batch in hand finishes and is committed before the loop returns;
- when a rebalance takes partitions away, the work in flight finishes and is committed before
  they move (`DrainOnRevoke`): the next owner starts after the last effect of this one, so two
  deliveries of one request are never handled at once (a second clone's window).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError

from runtime import metrics, tracing
from runtime.kafka import client_auth
from runtime.logs import message_var, request_id_var
from runtime.retry import PermanentError, RetriableError, RetryPolicy
from runtime.settings import BusSettings
from schemas.base import Envelope
from schemas.codec import SchemaError, decode, encode, envelope_for, salvage
from schemas.dlq import DeadLetter
from schemas.topics import DEAD_LETTERS, TopicSpec

log = logging.getLogger(__name__)

Handler = Callable[[Envelope[Any]], Awaitable[None]]
#: Called before a message is dead-lettered, so the service can record the failure where the
#: user sees it (request log, status endpoint, a reply, a notification). Must not raise. A
#: message that does not even decode reaches it too, as `schemas.codec.salvage` reads it (its
#: request id, user and flat payload fields, unvalidated): every request a worker gives up on
#: ends where its author looks.
FailureHook = Callable[[Envelope[Any], Exception], Awaitable[None]]


#: What a loop runs when its partitions are revoked: finish the work on them, commit it.
Drain = Callable[[set[TopicPartition]], Awaitable[None]]


class DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds a rebalance until the consumer loop has finished and committed what it was doing.

    aiokafka awaits `on_partitions_revoked` before this member rejoins, and the group's other
    members wait for the rejoin (up to `max_poll_interval_ms`), so no partition has a new owner
    while an effect of the old one is still in flight. The fetcher hands out nothing during a
    reassignment, so the work to drain is what the loop already holds. `drain` is set by the loop
    that consumes (and cleared when it ends: a consumer closed after its loop has nothing left).
    """

    def __init__(self) -> None:
        self.drain: Drain | None = None
        self._then: ConsumerRebalanceListener | None = None

    def chained(self, then: ConsumerRebalanceListener) -> DrainOnRevoke:
        """This drain, then a service's own listener (which sees a revocation after the drain,
        and every assignment)."""
        self._then = then
        return self

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.drain is not None and revoked:
            started = time.monotonic()
            await self.drain(set(revoked))
            log.info(
                "partitions %s revoked: the work in flight finished and was committed in %.2f s",
                sorted(tp.partition for tp in revoked),
                time.monotonic() - started,
            )
        if self._then is not None:
            await self._then.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self._then is not None:
            await self._then.on_partitions_assigned(assigned)


def drain_of(consumer: Any) -> DrainOnRevoke | None:
    """The consumer's revocation hook (made by `make_consumer`, or a `RdGroupConsumer`'s)."""
    hook = getattr(consumer, "revoke_drain", None)
    return hook if isinstance(hook, DrainOnRevoke) else None


class ConsumerHalted(RuntimeError):
    """Too many dead letters: the worker stops rather than dead-letter everything."""


@dataclass
class _Partition:
    in_a_row: int = 0
    recent: deque[bool] = field(default_factory=deque)  # True: dead-lettered
    dead: int = 0  # in `recent`


@dataclass
class DeadLetterLimit:
    """When a partition's dead letters say something is broken beyond one message (arroyo's
    `DlqLimit`): `max_consecutive` in a row, or at least `max_ratio` of its last `window`
    messages (judged once `window` have been seen). Per partition: one partition full of bad
    messages is not hidden by good ones on the others, nor the other way round."""

    max_consecutive: int = 100
    max_ratio: float = 0.5
    window: int = 1000
    _partitions: dict[tuple[str, int], _Partition] = field(default_factory=dict)

    def handled(self, topic: str, partition: int) -> None:
        self._see(topic, partition, dead=False)

    def dead(self, topic: str, partition: int) -> str | None:
        """Count a dead letter; the reason to stop, when there is one."""
        seen = self._see(topic, partition, dead=True)
        if seen.in_a_row >= self.max_consecutive:
            return f"{seen.in_a_row} dead letters in a row on {topic} partition {partition}"
        if len(seen.recent) >= self.window and seen.dead >= self.max_ratio * self.window:
            return (
                f"{seen.dead} dead letters in the last {self.window} messages on {topic} "
                f"partition {partition}"
            )
        return None

    def _see(self, topic: str, partition: int, *, dead: bool) -> _Partition:
        seen = self._partitions.setdefault((topic, partition), _Partition())
        seen.in_a_row = seen.in_a_row + 1 if dead else 0
        seen.recent.append(dead)
        seen.dead += dead
        if len(seen.recent) > self.window:
            seen.dead -= seen.recent.popleft()
        return seen


@dataclass(frozen=True)
class LoopConfig:
    """Tuning of one consumer loop."""

    max_batch: int = 500
    concurrency: int = 32
    max_consecutive_dead: int = 100  # per partition
    max_dead_ratio: float = 0.5  # of a partition's last `dead_ratio_window` messages
    dead_ratio_window: int = 1000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_timeout_ms: int = 200
    commit_interval_s: float = 0.0  # the pipelined loop commits at most this often


def make_consumer(
    settings: BusSettings,
    spec: TopicSpec,
    group: str,
    *,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
) -> AIOKafkaConsumer:
    """A consumer for one registry topic; offsets are committed by the loop, never automatically.
    It fetches as soon as one byte is there (latency first). A rebalance waits for the loop that
    consumes it to drain (`DrainOnRevoke`). A member killed outright keeps its partitions until
    its group session times out (`session_timeout_ms`; aiokafka's 10 s by default, the broker's
    `group.min.session.timeout.ms`, 6 s by default, at least)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        client_id=settings.instance,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_poll_records=1000,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        **client_auth(settings),
    )
    consumer.revoke_drain = DrainOnRevoke()
    consumer.subscribe([spec.named(settings.topic_prefix)], listener=consumer.revoke_drain)
    return consumer


class ConsumerLoop:
    """Consumes one topic with one handler; see the module docstring for what it guarantees."""

    def __init__(
        self,
        *,
        service: str,
        settings: BusSettings,
        spec: TopicSpec,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        handler: Handler,
        on_failure: FailureHook | None = None,
        config: LoopConfig = LoopConfig(),
    ) -> None:
        self._service, self._settings, self._spec = service, settings, spec
        self._consumer, self._producer = consumer, producer
        self._handler, self._on_failure, self._config = handler, on_failure, config
        self._topic = spec.named(settings.topic_prefix)
        self._dead = DeadLetterLimit(
            config.max_consecutive_dead, config.max_dead_ratio, config.dead_ratio_window
        )
        self._group = str(getattr(consumer, "_group_id", "") or service)
        self._idle = asyncio.Event()  # no batch in hand (set: nothing for a revocation to wait)
        self._idle.set()
        self._revoke = drain_of(consumer)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set (the batch in hand is finished and committed first)."""
        metrics.ready(self._service, True)
        if self._revoke is not None:
            self._revoke.drain = self._drain
        try:
            while not stop.is_set():
                batch = await self._consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms, max_records=self._config.max_batch
                )
                if batch:
                    self._idle.clear()
                    try:
                        await self._handle_batch(batch)
                        await self._commit(batch)
                    finally:
                        self._idle.set()
                    self._record_lag(batch)
        finally:
            if self._revoke is not None:
                self._revoke.drain = None
            metrics.ready(self._service, False)

    async def _drain(self, revoked: set[TopicPartition]) -> None:
        """On revocation: the batch in hand (if any) finishes and its offsets commit."""
        await self._idle.wait()

    async def _handle_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        groups: dict[tuple[int, Any], list[ConsumerRecord]] = defaultdict(list)
        for tp, records in batch.items():
            for record in records:
                groups[(tp.partition, record.key)].append(record)
        gate = asyncio.Semaphore(self._config.concurrency)

        async def run_group(records: list[ConsumerRecord]) -> None:
            async with gate:
                for record in records:
                    await self._handle_record(record)

        await asyncio.gather(*(run_group(g) for g in groups.values()))

    async def _handle_record(self, record: ConsumerRecord) -> None:
        if not tracing.on():
            await self._handle(record)
            return
        with tracing.span(
            f"process {record.topic}",
            kind=tracing.CONSUMER,
            parent=tracing.extract(record.headers),
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.consumer.group.name": self._group,
            },
        ):
            await self._handle(record)

    async def _handle(self, record: ConsumerRecord) -> None:
        message_var.set(f"{record.topic}/{record.partition}@{record.offset}")
        started = time.perf_counter()
        try:
            envelope = decode(self._spec, record.value)
        except SchemaError as exc:
            salvaged = salvage(self._spec, record.value, record.key)
            request_id_var.set(salvaged.id if salvaged is not None else "-")
            if salvaged is None:
                await self._dead_letter(record, exc)
            else:
                await self._fail(record, salvaged, exc)
            return
        request_id_var.set(envelope.id)
        try:
            await self._config.retry.run(lambda: self._handler(envelope), "handler")
        except (PermanentError, RetriableError) as exc:
            await self._fail(record, envelope, exc)
        except Exception as exc:  # a bug must not kill the worker; it is logged and dead-lettered
            log.exception("unexpected error handling message")
            await self._fail(record, envelope, exc)
        else:
            self._dead.handled(record.topic, record.partition)
            metrics.MESSAGES_HANDLED.labels(self._service, self._spec.name).inc()
            log.debug("handled %s", envelope.type)
        finally:
            elapsed = time.perf_counter() - started
            metrics.HANDLE_LATENCY.labels(self._service, self._spec.name).observe(elapsed)

    async def _fail(self, record: ConsumerRecord, envelope: Envelope[Any], exc: Exception) -> None:
        kind = "retriable" if isinstance(exc, RetriableError) else "permanent"
        if isinstance(exc, SchemaError):
            kind = "schema"
        metrics.MESSAGES_FAILED.labels(self._service, self._spec.name, kind).inc()
        tracing.failed(tracing.current(), exc)
        if self._on_failure is not None:
            try:
                await self._on_failure(envelope, exc)
            except Exception:
                log.exception("failure hook raised; dead-lettering anyway")
        await self._dead_letter(record, exc)

    async def _dead_letter(self, record: ConsumerRecord, exc: Exception) -> None:
        log.warning("dead-lettering %s: %s", type(exc).__name__, exc)
        letter = DeadLetter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode(errors="replace") if record.key else None,
            consumer_group=self._group,
            error_class=type(exc).__name__,
            reason=str(exc) or type(exc).__name__,
            raw_b64=base64.b64encode(record.value or b"").decode(),
        )
        envelope = envelope_for(DEAD_LETTERS, letter, trace={"service": self._service})
        await self._producer.send_and_wait(
            DEAD_LETTERS.named(self._settings.topic_prefix), encode(envelope), key=record.key
        )
        metrics.DEAD_LETTERS.labels(self._service, self._spec.name).inc()
        reason = self._dead.dead(record.topic, record.partition)
        if reason is not None:
            raise ConsumerHalted(f"{reason}: stopping")

    async def _commit(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        await self._commit_offsets(
            {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        )

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partition away; its new owner gets the messages again and
            # the handlers' idempotency makes the second pass harmless.
            log.warning("offset commit failed (%s); messages will be redelivered", exc)

    def _record_lag(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assigned = self._consumer.assignment()
        for tp in batch:
            if tp not in assigned:  # revoked by a rebalance while the batch was handled
                continue
            high = self._consumer.highwater(tp)
            if high is not None:
                position = batch[tp][-1].offset + 1
                metrics.CONSUMER_LAG.labels(self._service, self._spec.name, tp.partition).set(
                    max(0, high - position)
                )


async def start_consumer(
    stack: contextlib.AsyncExitStack, settings: BusSettings, spec: TopicSpec, group: str
) -> AIOKafkaConsumer:
    """A started consumer that the stack stops (leaving its group) when it unwinds."""
    consumer = make_consumer(settings, spec, group)
    await consumer.start()
    stack.push_async_callback(consumer.stop)
    return consumer
