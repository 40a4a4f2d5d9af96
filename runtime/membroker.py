"""An in-memory broker that runs a whole worker (`runtime.worker.Worker`) in a unit test.

The worker is the service's own: its declared subscriptions, handlers, failure hooks and
publishers. Only the clients change: topics are lists of records in memory, partitioned by key
(so one key stays in order, as on Kafka), and the loops are the real ones (`ConsumerLoop`,
`PipelinedConsumerLoop`), so a message goes through the same codec (encoded here, decoded by
the loop), the same retries, failure hook and dead letter, the same commits. What the
publishers send is on the topics for the test to read (`sent`, `dead_letters`); a handler that
publishes to a topic the worker itself consumes sees its message come back.

    broker = MemBroker()
    async with broker.running(worker):
        await broker.publish(ENQUEUE_REQUESTS, EnqueueTask(...), user="alice")
        await broker.settled()
    assert broker.sent(TASK_EVENTS)[0].payload.kind == TaskEventKind.ENQUEUED

Not simulated: rebalances (one member per group, every partition assigned to it), broker
outages, retention and compaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any, TypeVar, cast

from aiokafka import ConsumerRecord, TopicPartition

from runtime.worker import Subscription, Worker
from schemas.base import Envelope, Model
from schemas.codec import decode, encode, envelope_for
from schemas.dlq import DeadLetter
from schemas.topics import DEAD_LETTERS, TopicSpec

P = TypeVar("P", bound=Model)


class _Topic:
    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions: list[list[ConsumerRecord[bytes, bytes]]] = [[] for _ in range(partitions)]
        self._next = 0  # round robin for records without a key

    def append(self, value: bytes | None, key: bytes | None) -> ConsumerRecord[bytes, bytes]:
        if key is None:
            partition, self._next = self._next, (self._next + 1) % len(self.partitions)
        else:
            partition = zlib.crc32(key) % len(self.partitions)
        log = self.partitions[partition]
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            topic=self.name,
            partition=partition,
            offset=len(log),
            timestamp=int(time.time() * 1000),
            timestamp_type=0,
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=len(key or b""),
            serialized_value_size=len(value or b""),
            headers=(),
        )
        log.append(record)
        return record


class MemProducer:
    """Appends to the broker's topics; every send is acknowledged at once."""

    def __init__(self, broker: MemBroker) -> None:
        self._broker = broker

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        self._broker.append(topic, value, key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> None:
        self._broker.append(topic, value, key)


class MemConsumer:
    """One member of a group holding every partition of one topic; the calls a consumer loop
    makes of aiokafka's consumer."""

    def __init__(self, broker: MemBroker, topic: str, group: str) -> None:
        self._broker, self._topic, self._group_id = broker, broker.topic(topic), group
        self._positions = {tp: broker.committed.get((group, tp), 0) for tp in self._tps()}

    def _tps(self) -> list[TopicPartition]:
        return [TopicPartition(self._topic.name, p) for p in range(len(self._topic.partitions))]

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        arrival = self._broker.arrival  # taken first: a record appended after the take sets it
        batch = self._take(max_records or 1000)
        if not batch:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_ms / 1000):
                    await arrival.wait()
            batch = self._take(max_records or 1000)
        return batch

    def _take(self, limit: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp, position in self._positions.items():
            records = self._topic.partitions[tp.partition][position : position + limit]
            if records:
                batch[tp] = records
                self._positions[tp] = position + len(records)
                limit -= len(records)
            if limit <= 0:
                break
        return batch

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            self._broker.committed[(self._group_id, tp)] = offset
        self._broker.changed()

    def assignment(self) -> set[TopicPartition]:
        return set(self._tps())

    def highwater(self, tp: TopicPartition) -> int:
        return len(self._topic.partitions[tp.partition])

    def settled(self) -> bool:
        """Every record of the topic handled and its offset committed by this group."""
        return all(
            self._broker.committed.get((self._group_id, tp), 0) >= self.highwater(tp)
            for tp in self._tps()
        )


class MemBroker:
    """Topics in memory, and the `runtime.worker.Bus` that gives a worker clients on them."""

    def __init__(self, prefix: str = "", partitions: Mapping[str, int] | None = None) -> None:
        #: Partitions of a topic not in the registry (a reply topic, say): 1.
        self._prefix = prefix
        self._partitions = dict(partitions or {})
        self._topics: dict[str, _Topic] = {}
        self.committed: dict[tuple[str, TopicPartition], int] = {}
        self._consumers: list[MemConsumer] = []
        self._expected = 0  # consumers of the workers running (made as their loops start)
        self._running: list[asyncio.Task[None]] = []
        self.arrival = asyncio.Event()  # set (and replaced) by every append
        self.commits = asyncio.Event()  # set (and replaced) by every commit

    # the Bus a worker starts on

    async def producer(self, stack: contextlib.AsyncExitStack, *, linger_ms: int) -> MemProducer:
        return MemProducer(self)

    async def consumer(
        self, stack: contextlib.AsyncExitStack, prefix: str, sub: Subscription[Any]
    ) -> MemConsumer:
        self._partitions.setdefault(sub.spec.named(prefix), sub.spec.partitions)
        consumer = MemConsumer(self, sub.spec.named(prefix), sub.group)
        self._consumers.append(consumer)
        self.changed()  # a consumer more for `settled` to look at
        if sub.listener is not None:
            await sub.listener.on_partitions_assigned(consumer.assignment())
        return consumer

    def changed(self) -> None:
        """Wake `settled`: a commit, a consumer more, a worker stopped."""
        self.commits.set()
        self.commits = asyncio.Event()

    # topics

    def topic(self, name: str) -> _Topic:
        if name not in self._topics:
            self._topics[name] = _Topic(name, self._partitions.get(name, 1))
        return self._topics[name]

    def append(self, topic: str, value: bytes | None, key: bytes | None) -> None:
        self.topic(topic).append(value, key)
        self.arrival.set()
        self.arrival = asyncio.Event()

    # what a test does

    @contextlib.asynccontextmanager
    async def running(
        self, worker: Worker, also: Mapping[str, Coroutine[Any, Any, None]] | None = None
    ) -> AsyncIterator[Worker]:
        """The worker started on this broker and its loops running; on exit they stop (their
        last batches committed), and a loop's failure is raised."""
        if worker.settings.topic_prefix != self._prefix:
            raise ValueError("the worker's topic prefix is not the broker's")
        for spec in (*(s.spec for s in worker.subscriptions), DEAD_LETTERS):
            self._partitions.setdefault(spec.named(self._prefix), spec.partitions)
        for publisher in worker.publishers:
            spec = publisher.spec
            self._partitions.setdefault(spec.named(self._prefix), spec.partitions)
        self._expected += len(worker.subscriptions)
        stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            await worker.start(stack, self)
            task = asyncio.create_task(worker.run(stop, also))
            task.add_done_callback(lambda _: self.changed())  # `settled` stops waiting
            self._running.append(task)
            try:
                yield worker
            finally:
                stop.set()
                self.arrival.set()
                await task

    async def publish(self, spec: TopicSpec[P], payload: P, **fields: Any) -> Envelope[P]:
        """Put a message on a topic as a publisher of it would (encoded, keyed by the topic's
        key function); the envelope put."""
        envelope = cast("Envelope[P]", envelope_for(spec, payload, **fields))
        key = spec.key_of(envelope) if spec.key_of is not None else None
        self.append(spec.named(self._prefix), encode(envelope), key.encode() if key else None)
        return envelope

    async def publish_raw(
        self, spec: TopicSpec[Model], value: bytes | None, key: bytes | None
    ) -> None:
        """Put bytes on a topic as they are (a message no codec would write)."""
        self.append(spec.named(self._prefix), value, key)

    async def settled(self, timeout_s: float = 5.0) -> None:
        """Wait until every consumer has handled and committed every record of its topic (what
        a handler published to a topic the worker consumes included); TimeoutError after
        `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while True:
                committed = self.commits  # taken first: a commit after the check sets it
                for task in self._running:
                    if task.done():  # a worker that stopped (on an error) will never settle
                        task.result()
                        raise RuntimeError("a worker stopped before its topics were handled")
                consumers = self._consumers
                if len(consumers) >= self._expected and all(c.settled() for c in consumers):
                    return
                await committed.wait()

    def records(self, spec: TopicSpec[Model]) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record of a topic, partition by partition (in order within each)."""
        topic = self.topic(spec.named(self._prefix))
        return [r for partition in topic.partitions for r in partition]

    def sent(self, spec: TopicSpec[P]) -> list[Envelope[P]]:
        """A topic's messages, decoded (tombstones left out)."""
        return [
            cast("Envelope[P]", decode(spec, r.value))
            for r in self.records(spec)
            if r.value is not None
        ]

    def dead_letters(self) -> list[DeadLetter]:
        """The dead-letter topic's letters."""
        return [e.payload for e in self.sent(DEAD_LETTERS)]
