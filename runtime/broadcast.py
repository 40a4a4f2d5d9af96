"""Reading a topic without a consumer group: every copy sees every message (a notification
stream, the heartbeats, the notifier's state log), from the beginning, the end, or some seconds
back. One way to open such a reader, where there were five hand-built ones."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from runtime.kafka import client_auth, partitions_of
from runtime.settings import BusSettings

#: "beginning", "end", or a number of seconds back (a partition with nothing that recent: its end)
Start = Literal["beginning", "end"] | float
#: A topic created a moment ago takes a little while to show in the metadata: up to 10 s.
METADATA_TRIES, METADATA_WAIT_S = 40, 0.25


async def open_reader(
    settings: BusSettings,
    topic: str,
    *,
    name: str,
    start: Start,
    partitions: Sequence[int] | None = None,
    fetch_max_wait_ms: int = 100,
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer without a group, assigned every partition of `topic` (or those named)
    and positioned at `start`; positions are resolved before it returns, so nothing published
    after that is missed. The caller stops it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
        client_id=f"{settings.instance}-{name}",
        **client_auth(settings),
    )
    await consumer.start()
    try:
        numbers = partitions if partitions is not None else await _partitions(settings, topic)
        tps = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(tps)
        await _seek(consumer, tps, start)
        for tp in tps:
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer, tps


@contextlib.asynccontextmanager
async def reading(
    settings: BusSettings,
    topic: str,
    *,
    name: str,
    start: Start,
    partitions: Sequence[int] | None = None,
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """`open_reader`, stopped at the end of the block."""
    consumer, tps = await open_reader(
        settings, topic, name=name, start=start, partitions=partitions
    )
    try:
        yield consumer, tps
    finally:
        await consumer.stop()


async def to_end(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout_s: float = 30.0
) -> AsyncIterator[Any]:
    """The records from the reader's positions up to the partitions' ends at the time of the
    call; TimeoutError when they are not read within `timeout_s`."""
    ends = await consumer.end_offsets(tps)
    async with asyncio.timeout(timeout_s):
        while left := [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*left, timeout_ms=500)
            for records in batch.values():
                for record in records:
                    yield record


async def _partitions(settings: BusSettings, topic: str) -> list[int]:
    for _ in range(METADATA_TRIES):
        found = await partitions_of(settings.kafka_bootstrap, topic)
        if found:
            return found
        await asyncio.sleep(METADATA_WAIT_S)
    raise RuntimeError(f"topic {topic} has no partitions (not created?)")


async def _seek(consumer: AIOKafkaConsumer, tps: list[TopicPartition], start: Start) -> None:
    if start == "beginning":
        await consumer.seek_to_beginning(*tps)
    elif start == "end":
        await consumer.seek_to_end(*tps)
    else:
        since_ms = int((time.time() - float(start)) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        for tp in tps:
            if (offset := found.get(tp)) is not None:
                consumer.seek(tp, offset.offset)
            else:
                await consumer.seek_to_end(tp)
