"""The two consumer loops on an in-memory consumer and producer: commits follow effects, the
halt after too many dead letters in a row, the drain on stop, and the pipelined loop's commits
up to the lowest unfinished offset."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from runtime.consumer import ConsumerHalted, ConsumerLoop, DeadLetterLimit, LoopConfig
from runtime.pipeline import PipelinedConsumerLoop
from runtime.retry import PermanentError, RetryPolicy
from runtime.settings import BusSettings
from schemas.base import Envelope
from schemas.codec import encode, envelope_for
from schemas.enqueue import EnqueueTask
from schemas.topics import DEAD_LETTERS, ENQUEUE_REQUESTS
from tests.support import eventually

SETTINGS = BusSettings(kafka_bootstrap="unused:9092", topic_prefix="")
TOPIC = ENQUEUE_REQUESTS.named("")
TP = TopicPartition(TOPIC, 0)


def record(offset: int, *, raw: bytes | None = None, key: str | None = None) -> ConsumerRecord:
    payload = EnqueueTask(task_id="t", template_task_id="x", queue_name="q", input={"n": offset})
    value = raw if raw is not None else encode(envelope_for(ENQUEUE_REQUESTS, payload))
    return ConsumerRecord(
        TOPIC, 0, offset, 0, 0, (key or f"k{offset}").encode(), value, None, 0, 0, []
    )


class FakeConsumer:
    """Hands out the queued batches, then nothing; records every commit."""

    def __init__(self, batches: list[list[ConsumerRecord]]) -> None:
        self.batches = list(batches)
        self.commits: list[int] = []
        self._group_id = "test-group"

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if self.batches:
            return {TP: self.batches.pop(0)}
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value))


Handler = Callable[[Envelope[Any]], Awaitable[None]]


def loop(
    cls: type[ConsumerLoop], consumer: FakeConsumer, handler: Handler, **config: Any
) -> tuple[ConsumerLoop, FakeProducer]:
    producer = FakeProducer()
    fast = {"retry": RetryPolicy(attempts=1), "poll_timeout_ms": 10, **config}
    made = cls(
        service="test",
        settings=SETTINGS,
        spec=ENQUEUE_REQUESTS,
        consumer=consumer,
        producer=producer,
        handler=handler,
        config=LoopConfig(**fast),
    )
    return made, producer


async def until(done: Callable[[], bool], what: str) -> None:
    async def probe() -> bool:
        return done()

    await eventually(probe, timeout_s=5, what=what)


async def run_until(made: ConsumerLoop, done: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(made.run(stop))
    await until(done, "the loop's commits")
    stop.set()
    await running


async def test_a_batch_is_committed_only_after_every_effect() -> None:
    effects: list[int] = []
    commits_seen_by_handler: list[list[int]] = []
    consumer = FakeConsumer([[record(0), record(1), record(2)]])

    async def handler(envelope: Envelope[Any]) -> None:
        commits_seen_by_handler.append(list(consumer.commits))
        effects.append(envelope.payload.input["n"])

    made, _ = loop(ConsumerLoop, consumer, handler)
    await run_until(made, lambda: consumer.commits == [3])
    assert sorted(effects) == [0, 1, 2]
    assert commits_seen_by_handler == [[], [], []]  # nothing committed before the effects


async def test_the_loop_halts_after_n_dead_letters_in_a_row_and_a_success_resets_the_count() -> (
    None
):
    async def handler(envelope: Envelope[Any]) -> None:
        if envelope.payload.input["n"] not in {2, 5}:
            raise PermanentError("bad")

    consumer = FakeConsumer([[record(i)] for i in range(6)])
    made, producer = loop(ConsumerLoop, consumer, handler, max_consecutive_dead=3)
    await run_until(made, lambda: consumer.commits[-1:] == [6])  # 2 dead, 1 fine, 2 dead, 1 fine
    assert len(producer.sent) == 4
    assert {topic for topic, _ in producer.sent} == {DEAD_LETTERS.named("")}

    async def failing(envelope: Envelope[Any]) -> None:
        raise PermanentError("bad")

    consumer = FakeConsumer([[record(i)] for i in range(5)])
    made, producer = loop(ConsumerLoop, consumer, failing, max_consecutive_dead=3)
    with pytest.raises(ConsumerHalted, match="3 dead letters in a row"):
        await asyncio.wait_for(made.run(asyncio.Event()), 5)
    assert len(producer.sent) == 3
    assert consumer.commits == [1, 2]  # the third is dead-lettered, then the loop stops: its
    # offset is not committed, so the message comes back to whoever fixes the cause


async def test_a_message_that_does_not_decode_is_dead_lettered_with_its_bytes_and_committed() -> (
    None
):
    consumer = FakeConsumer([[record(0, raw=b"{not json"), record(1)]])
    handled: list[int] = []

    async def handler(envelope: Envelope[Any]) -> None:
        handled.append(envelope.payload.input["n"])

    made, producer = loop(ConsumerLoop, consumer, handler)
    await run_until(made, lambda: consumer.commits == [2])
    assert handled == [1]
    assert len(producer.sent) == 1


async def test_stop_lets_the_batch_in_hand_finish_and_commits_it() -> None:
    release = asyncio.Event()
    started: list[int] = []
    consumer = FakeConsumer([[record(0), record(1)]])

    async def handler(envelope: Envelope[Any]) -> None:
        started.append(envelope.payload.input["n"])
        await release.wait()

    made, _ = loop(ConsumerLoop, consumer, handler)
    stop = asyncio.Event()
    running = asyncio.create_task(made.run(stop))
    await until(lambda: len(started) == 2, "both messages started")
    stop.set()  # mid-batch
    await asyncio.sleep(0.05)
    assert not running.done()
    assert consumer.commits == []
    release.set()
    await asyncio.wait_for(running, 5)
    assert consumer.commits == [2]


async def test_the_pipelined_loop_commits_up_to_the_lowest_unfinished_offset() -> None:
    gates = {i: asyncio.Event() for i in range(4)}
    consumer = FakeConsumer([[record(i) for i in range(4)]])

    async def handler(envelope: Envelope[Any]) -> None:
        await gates[envelope.payload.input["n"]].wait()

    made, _ = loop(PipelinedConsumerLoop, consumer, handler, commit_interval_s=0.0)
    stop = asyncio.Event()
    running = asyncio.create_task(made.run(stop))
    for i in (0, 2, 3):  # offset 1 is slow: nothing past it may be committed
        gates[i].set()
    await asyncio.sleep(0.1)
    assert consumer.commits
    assert max(consumer.commits) == 1
    gates[1].set()
    await until(lambda: consumer.commits[-1:] == [4], "the commit past offset 1")
    stop.set()
    await asyncio.wait_for(running, 5)
    assert consumer.commits == sorted(consumer.commits)  # never backwards


async def test_the_pipelined_loop_drains_on_stop_and_halts_like_the_batch_loop() -> None:
    release = asyncio.Event()
    consumer = FakeConsumer([[record(0), record(1)]])
    seen: list[int] = []

    async def slow(envelope: Envelope[Any]) -> None:
        seen.append(envelope.payload.input["n"])
        await release.wait()

    made, _ = loop(PipelinedConsumerLoop, consumer, slow, commit_interval_s=60.0)
    stop = asyncio.Event()
    running = asyncio.create_task(made.run(stop))
    await until(lambda: len(seen) == 2, "both messages started")
    stop.set()
    await asyncio.sleep(0.05)
    assert not running.done()
    release.set()
    await asyncio.wait_for(running, 5)
    assert consumer.commits[-1] == 2

    async def failing(envelope: Envelope[Any]) -> None:
        raise PermanentError("bad")

    consumer = FakeConsumer([[record(i) for i in range(5)]])
    made, producer = loop(PipelinedConsumerLoop, consumer, failing, max_consecutive_dead=3)
    with pytest.raises(ConsumerHalted):
        await asyncio.wait_for(made.run(asyncio.Event()), 5)
    assert len(producer.sent) >= 3


def test_dead_letters_are_counted_per_partition_in_a_row_and_as_a_share() -> None:
    limit = DeadLetterLimit(max_consecutive=3, max_ratio=0.5, window=10)
    # two dead letters on each of two partitions, interleaved: neither is 3 in a row
    for _ in range(2):
        assert limit.dead("t", 0) is None
        assert limit.dead("t", 1) is None
    assert limit.dead("t", 0) == "3 dead letters in a row on t partition 0"
    # one message in two dead-lettered, never 3 in a row: stops when the window is full
    limit = DeadLetterLimit(max_consecutive=3, max_ratio=0.5, window=10)
    reasons = []
    for _ in range(5):
        limit.handled("t", 0)
        reasons.append(limit.dead("t", 0))
    assert reasons == [None] * 4 + ["5 dead letters in the last 10 messages on t partition 0"]
    # under the share, the window slides: old dead letters leave it
    limit = DeadLetterLimit(max_consecutive=3, max_ratio=0.5, window=10)
    for n in range(100):
        if n % 3 == 0:
            assert limit.dead("t", 0) is None
        else:
            limit.handled("t", 0)
