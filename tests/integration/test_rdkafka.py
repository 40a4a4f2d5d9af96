"""The librdkafka bridge (runtime/rdkafka.py) against the real broker: sends are acknowledged,
a tail sees what is published after it starts and nothing before, and a group member reads
every partition and the next member resumes at its commit."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from runtime.rdkafka import RdGroupConsumer, RdProducer, RdTail
from runtime.settings import BusSettings
from tests.conftest import Bus


async def _topic(bus: Bus, name: str, partitions: int = 1) -> str:
    topic = f"{bus.topic_prefix}{name}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bus.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def _read(consumer: RdGroupConsumer, count: int, timeout_s: float = 20) -> list[Any]:
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count:
        assert time.monotonic() < deadline, f"{len(records)} of {count} read"
        batch = await consumer.getmany(timeout_ms=200)
        records += [r for rs in batch.values() for r in rs]
    return records


async def test_a_tail_sees_what_is_sent_after_it_starts(bus: Bus) -> None:
    settings = BusSettings(**bus.settings(), instance="rd-tail")
    topic = await _topic(bus, "rd.tail")
    producer = RdProducer(settings)
    await producer.start()
    seen: list[bytes | None] = []
    arrived = asyncio.Event()

    def got(value: bytes | None) -> None:
        seen.append(value)
        arrived.set()

    try:
        await producer.send_and_wait(topic, b"before", key=b"k")
        tail = RdTail(settings, topic, got)
        await tail.start()
        await producer.send_and_wait(topic, b"after", key=b"k")
        await asyncio.wait_for(arrived.wait(), 10)
        await asyncio.sleep(0.3)  # time for anything else to come, which must not
        await tail.stop()
    finally:
        await producer.stop()
    assert seen == [b"after"]


async def test_a_member_reads_every_partition_and_the_next_resumes_from_its_commit(
    bus: Bus,
) -> None:
    settings = BusSettings(**bus.settings(), instance="rd-group")
    topic = await _topic(bus, "rd.group", partitions=2)
    group = f"{bus.topic_prefix}rd-group"
    producer = RdProducer(settings)
    await producer.start()
    try:
        for i in range(40):
            await producer.send_and_wait(topic, str(i).encode(), key=str(i % 7).encode())
    finally:
        await producer.stop()

    first = RdGroupConsumer(settings, topic, group, buffer=10)
    await first.start()
    records = await _read(first, 40)
    assert sorted(int(r.value) for r in records) == list(range(40))
    assert first.assignment() == {(topic, 0), (topic, 1)}
    assert all(first.highwater(tp) is not None for tp in first.assignment())
    # commit half of each partition: the next member starts right after it
    by_partition: dict[int, list[int]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r.offset)
    half = {p: sorted(offs)[len(offs) // 2] for p, offs in by_partition.items()}
    await first.commit({TopicPartition(topic, p): off for p, off in half.items()})
    await first.stop()

    second = RdGroupConsumer(settings, topic, group)
    await second.start()
    expected = sum(len(offs) - len(offs) // 2 for offs in by_partition.values())
    again = await _read(second, expected)
    await asyncio.sleep(0.5)
    assert not await second.getmany(timeout_ms=300)  # nothing before the commit came again
    await second.stop()
    assert {(r.partition, r.offset) for r in again} == {
        (p, o) for p, offs in by_partition.items() for o in offs if o >= half[p]
    }
