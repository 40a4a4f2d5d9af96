"""librdkafka (confluent-kafka) for the request/reply path, bridged to asyncio.

aiokafka encodes every request in Python: measured here at 200 messages/s, one request/reply
round trip over two hops cost ~1.0 ms of CPU in the echoing process and ~1.1 ms in the caller,
against ~0.2 ms each with librdkafka, and its p50 was 2.0-2.3 ms against 0.8 ms. On the on-demand
path every call makes four such client operations, so the C client is where the latency
budget is won; the other workers, which batch, keep aiokafka.

librdkafka runs its own threads; each object here adds one polling thread that serves its
callbacks and hands results to the event loop with `call_soon_threadsafe`. Errors come out as
`RdKafkaError`, a subclass of aiokafka's `KafkaError`, so the callers' error handling is the
same for both clients.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.errors import KafkaError
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka import KafkaError as CKafkaError
from confluent_kafka import KafkaException as CKafkaException

from runtime import tracing
from runtime.consumer import DrainOnRevoke
from runtime.settings import BusSettings

log = logging.getLogger(__name__)
#: Longest block of a polling thread; bounds how long a stop waits for it.
_POLL_S = 0.1
#: Longest wait for a commit's answer.
_COMMIT_S = 15.0


class RdKafkaError(KafkaError):  # type: ignore[misc]
    """A librdkafka failure, caught where aiokafka's errors are."""


def _common(settings: BusSettings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": settings.instance,
        "socket.nagle.disable": True,
        "logger": logging.getLogger("rdkafka"),  # its own log lines, through ours
        **_auth(settings),
    }


def _auth(settings: BusSettings) -> dict[str, Any]:
    """librdkafka's spelling of runtime.kafka.client_auth."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL"):
        options |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_username,
            "sasl.password": settings.kafka_password.get_secret_value(),
        }
    return options


class RdProducer:
    """An idempotent producer (acks=all, linger 0 by default) whose sends are awaited."""

    def __init__(self, settings: BusSettings, *, linger_ms: int = 0) -> None:
        self._producer = Producer(
            {
                **_common(settings),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": linger_ms,
                "message.timeout.ms": 15_000,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rdkafka-producer", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start serving delivery reports; the broker is asked for metadata now, so that a
        broker that is down shows at start rather than on the first request."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        try:
            await asyncio.to_thread(self._producer.list_topics, timeout=10)
        except CKafkaException as exc:
            await self.stop()
            raise RdKafkaError(f"Kafka not reachable: {exc}") from exc

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send and wait for the broker's ack; RdKafkaError when it does not take it."""
        loop = self._loop or asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: CKafkaError | None, _msg: Message) -> None:
            failure = None if err is None else RdKafkaError(f"not delivered: {err.str()}")
            _to_loop(loop, _settle, done, failure)

        if not tracing.on():
            self._produce(topic, value, key, delivered, None)
            await done
            return
        attributes = {"messaging.system": "kafka", "messaging.destination.name": topic}
        with tracing.span(f"publish {topic}", kind=tracing.PRODUCER, attributes=attributes):
            self._produce(topic, value, key, delivered, tracing.inject())
            await done

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        delivered: Callable[[CKafkaError | None, Message], None],
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        try:
            if headers:
                carried: list[tuple[str, str | bytes | None]] = list(headers)
                self._producer.produce(topic, value, key, on_delivery=delivered, headers=carried)
            else:
                self._producer.produce(topic, value, key, on_delivery=delivered)
        except (BufferError, CKafkaException) as exc:
            raise RdKafkaError(f"not queued: {exc}") from exc

    async def stop(self) -> None:
        """Deliver what is queued (up to 10 s), then stop the polling thread."""
        await asyncio.to_thread(self._producer.flush, 10)
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(_POLL_S)


def _to_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> bool:
    """Run `fn(*args)` on the event loop, from a polling thread; False once the loop is closed
    (a stop that has not reached the thread yet)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        return False
    return True


def _settle(done: asyncio.Future[None], err: Exception | None) -> None:
    if done.done():
        return
    if err is None:
        done.set_result(None)
    else:
        done.set_exception(err)


async def _shut(stop: threading.Event, thread: threading.Thread, consumer: Consumer) -> None:
    """End a consumer's polling thread, then close the consumer: while the thread polls, a call
    into the consumer from another thread would block holding the GIL."""
    stop.set()
    if thread.is_alive():
        await asyncio.to_thread(thread.join)
    await asyncio.to_thread(consumer.close)


class RdTail:
    """Reads one partition from its end onward, without a consumer group, calling `deliver`
    with each message's value on the event loop (for a process's own reply topic)."""

    def __init__(
        self, settings: BusSettings, topic: str, deliver: Callable[[bytes | None], None]
    ) -> None:
        self._topic, self._deliver = topic, deliver
        self._consumer = Consumer(
            {
                **_common(settings),
                # required by librdkafka; never joined, offsets never committed (assign only)
                "group.id": f"{settings.instance}-tail",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": 100,
                "fetch.min.bytes": 1,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rdkafka-tail", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Position at the partition's current end (asked of the broker now, so nothing
        published after `start` returns is missed), then start reading."""
        self._loop = asyncio.get_running_loop()
        try:
            _, high = await asyncio.to_thread(
                self._consumer.get_watermark_offsets, TopicPartition(self._topic, 0), 10
            )
        except CKafkaException as exc:
            await asyncio.to_thread(self._consumer.close)
            raise RdKafkaError(f"cannot position on {self._topic}: {exc}") from exc
        self._consumer.assign([TopicPartition(self._topic, 0, high)])
        self._thread.start()

    async def stop(self) -> None:
        """Stop reading and close the consumer."""
        await _shut(self._stop, self._thread, self._consumer)

    def running(self) -> bool:
        """True while the reading thread runs."""
        return self._thread.is_alive()

    def _serve(self) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            msg = self._consumer.poll(_POLL_S)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                log.warning("reading %s: %s", self._topic, err.str())
                continue
            if not _to_loop(self._loop, self._deliver, msg.value()):
                return


@dataclass(frozen=True)
class RdRecord:
    """One consumed message, with the fields of aiokafka's ConsumerRecord the loops read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = None  # librdkafka's: a list of (name, value) pairs, or None


class RdGroupConsumer:
    """A consumer-group member on librdkafka, offering the part of aiokafka's consumer that the
    consumer loops use (`getmany`, `commit`, `assignment`, `highwater`), so that a latency-bound
    worker (the inference router) runs the same loop on the C client.

    One thread owns the librdkafka consumer: a call into it from another thread while it polls
    blocks holding the GIL, a deadlock. So the thread polls, hands batches to the event loop,
    keeps the assignment (from the rebalance callbacks) and the partitions' ends for the loop to
    read, and runs the commits the loop asks for (asynchronously: the fetching does not wait for
    them). Past `buffer` messages not yet taken it pauses the partitions (still polling, so the
    member stays in its group) and resumes them once the loop has taken half. Offsets move only
    by `commit`; a commit that fails (a rebalance took the partition) raises RdKafkaError, a
    KafkaError.

    A revocation is held (inside librdkafka's rebalance callback, on the thread) until the loop
    has drained (`revoke_drain`, as with aiokafka): the messages of the revoked partitions not yet
    taken are dropped (their new owner reads them from the committed offset), those in flight
    finish, and the loop's commits are made from the callback itself, synchronously."""

    def __init__(
        self,
        settings: BusSettings,
        topic: str,
        group: str,
        *,
        buffer: int = 2000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
    ) -> None:
        self._topic, self._group_id, self._limit = topic, group, buffer
        self._consumer = Consumer(
            {
                **_common(settings),
                "group.id": group,
                # A member killed outright keeps its partitions, and what it had not committed
                # waits, until its session times out: librdkafka's default is 45 s, aiokafka's
                # (the other workers') 10 s. Heartbeats come from librdkafka's own thread, so a
                # busy event loop does not make a member miss them.
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": heartbeat_interval_ms,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
                "fetch.min.bytes": 1,
                "on_commit": self._committed,
            }
        )
        self._records: list[RdRecord] = []
        self._ready = asyncio.Event()
        self._paused = False
        self._assigned: frozenset[tuple[str, int]] = frozenset()
        self._high: dict[tuple[str, int], int] = {}
        self._commits: queue.SimpleQueue[tuple[list[TopicPartition], asyncio.Future[None]]] = (
            queue.SimpleQueue()
        )
        self._in_flight: collections.deque[asyncio.Future[None]] = collections.deque()
        self.revoke_drain = DrainOnRevoke()
        self._generation = 0  # moves on every revocation: a poll's records from before are stale
        self._draining: asyncio.Future[None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rdkafka-group", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Join the group (in the background, as aiokafka does) and start consuming."""
        self._loop = asyncio.get_running_loop()
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop consuming and leave the group (the loop has committed what it finished)."""
        await _shut(self._stop, self._thread, self._consumer)

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[Any, list[RdRecord]]:
        """What has arrived, by partition, waiting up to `timeout_ms` for the first message."""
        if not self._records:
            self._ready.clear()
            # Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives
            # as the awaited event is set (it returns the result instead), and a worker killed
            # mid-burst (messages arriving, so the event is set often) then ran on for ever.
            try:
                async with asyncio.timeout(timeout_ms / 1000):
                    await self._ready.wait()
            except TimeoutError:
                return {}
        n = len(self._records) if max_records is None else max_records
        taken, self._records = self._records[:n], self._records[n:]
        out: dict[Any, list[RdRecord]] = {}
        for record in taken:
            out.setdefault(AioTopicPartition(record.topic, record.partition), []).append(record)
        return out

    async def commit(self, offsets: dict[Any, int]) -> None:
        """Commit the next offset to read of each partition (aiokafka's convention)."""
        parts = [TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commits.put((parts, done))
        try:
            async with asyncio.timeout(_COMMIT_S):  # not wait_for: see `getmany`
                await done
        except TimeoutError as exc:
            raise RdKafkaError(f"commit not answered within {_COMMIT_S:g} s") from exc

    def assignment(self) -> set[Any]:
        """The partitions this member holds now."""
        return {AioTopicPartition(t, p) for t, p in self._assigned}

    def highwater(self, tp: Any) -> int | None:
        """The partition's end as of the last fetch (None before one)."""
        return self._high.get((tp.topic, tp.partition))

    def _take(self, records: list[RdRecord]) -> None:
        self._records.extend(records)
        self._ready.set()

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> bool:
        assert self._loop is not None
        return _to_loop(self._loop, fn, *args)

    # Everything below runs on the consumer's own thread.

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._run_commits()
            self._flow()
            records = self._poll_batch()
            if not records:
                continue
            for topic, partition in {(r.topic, r.partition) for r in records}:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
                if high is not None and high >= 0:
                    self._high[(topic, partition)] = high
            if records and not self._to_loop(self._take, records):
                return
        self._run_commits()

    def _poll_batch(self, limit: int = 500) -> list[RdRecord]:
        """What the next polls return (up to `limit`), less what came before a revocation.

        The rebalance callbacks run inside `poll`: a message returned by the poll that ran them
        comes after them (of the new assignment, fetched from the committed offsets), while the
        messages polled before a revocation are stale (their partitions are read again from the
        commits by whoever gets them). Dropping the whole batch instead lost messages for good:
        when one poll ran the revocation and the assignment, the new assignment's first
        messages, those its previous owner had not committed (a dead copy's calls in hand),
        were dropped while the fetch position moved past them.
        """
        generation = self._generation
        message: Message | None = self._consumer.poll(_POLL_S)
        records: list[RdRecord] = []
        while message is not None:
            if generation != self._generation:  # this poll ran a revocation
                records, generation = [], self._generation
            self._keep(message, records)
            if len(records) >= limit:
                break
            message = self._consumer.poll(0)
        if generation != self._generation:  # the last, empty poll ran one
            records = []
        return records

    def _keep(self, m: Message, records: list[RdRecord]) -> None:
        err = m.error()
        if err is not None:
            log.warning("consuming %s: %s", self._topic, err.str())
            return
        records.append(
            RdRecord(
                m.topic() or "",
                m.partition() or 0,
                m.offset() or 0,
                m.key(),
                m.value(),
                m.headers(),
            )
        )

    def _run_commits(self, *, synchronous: bool = False) -> None:
        while True:
            try:
                parts, done = self._commits.get_nowait()
            except queue.Empty:
                return
            try:
                if synchronous:
                    # Inside a rebalance callback no poll serves the commit callbacks: commit
                    # and settle here (librdkafka calls `on_commit` for a synchronous commit
                    # never).
                    result = self._consumer.commit(offsets=parts, asynchronous=False)
                    failed = [str(p.error) for p in result if p.error is not None]
                    failure = RdKafkaError(f"commit failed: {failed}") if failed else None
                    self._to_loop(_settle, done, failure)
                    continue
                self._consumer.commit(offsets=parts, asynchronous=True)
            except CKafkaException as exc:
                self._to_loop(_settle, done, RdKafkaError(f"commit failed: {exc}"))
                continue
            self._in_flight.append(done)

    def _committed(self, err: CKafkaError | None, _parts: list[TopicPartition]) -> None:
        if not self._in_flight:
            return
        done = self._in_flight.popleft()
        self._to_loop(_settle, done, None if err is None else RdKafkaError(err.str()))

    def _on_assign(self, _consumer: Consumer, parts: list[TopicPartition]) -> None:
        self._assigned = frozenset((p.topic, p.partition) for p in parts)
        self._paused = False

    def _on_revoke(self, _consumer: Consumer, parts: list[TopicPartition]) -> None:
        self._generation += 1
        revoked = {AioTopicPartition(p.topic, p.partition) for p in parts}
        released = threading.Event()
        draining = revoked and self.revoke_drain.drain is not None
        if draining and self._to_loop(self._drain_on_loop, revoked, released):
            # Serve the loop's commits meanwhile: this thread is the only one that may call
            # into the consumer, and it is inside the callback until the drain is over.
            while not released.wait(_POLL_S / 10):
                self._run_commits(synchronous=True)
            self._run_commits(synchronous=True)
        self._assigned = frozenset()

    def _drain_on_loop(self, revoked: set[Any], released: threading.Event) -> None:
        """On the event loop: drop the revoked partitions' messages not yet taken, then run the
        loop's drain; the callback waiting on the thread is released when it is over."""
        drain = self.revoke_drain.drain
        self._records = [
            r for r in self._records if AioTopicPartition(r.topic, r.partition) not in revoked
        ]
        if drain is None:
            released.set()
            return

        async def run() -> None:
            try:
                await drain(revoked)
            except Exception:
                log.exception("draining revoked partitions failed; they move anyway")
            finally:
                released.set()

        self._draining = asyncio.ensure_future(run())  # kept: a task nobody holds may vanish

    def _flow(self) -> None:
        """Pause the partitions while the loop is behind, resume when it has caught up."""
        held = len(self._records)  # read across threads: an estimate is enough here
        parts = [TopicPartition(t, p) for t, p in self._assigned]
        if not self._paused and held >= self._limit and parts:
            self._consumer.pause(parts)
            self._paused = True
        elif self._paused and held <= self._limit // 2:
            self._consumer.resume(parts)
            self._paused = False
