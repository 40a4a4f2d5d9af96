"""A worker cancelled while its librdkafka consumer waits for messages stops, even when a
message arrives in the same turn of the event loop (the router-restart test once hung for
300 s on this: Python 3.11's `asyncio.wait_for` returned the batch and dropped the cancel)."""

from __future__ import annotations

import asyncio

import pytest

from runtime.rdkafka import RdGroupConsumer, RdRecord


def waiting_consumer() -> RdGroupConsumer:
    """The consumer's loop-side half only: no librdkafka client, no network."""
    consumer = RdGroupConsumer.__new__(RdGroupConsumer)
    consumer._records = []
    consumer._ready = asyncio.Event()
    return consumer


async def test_a_cancel_that_meets_an_arriving_message_still_cancels() -> None:
    consumer = waiting_consumer()
    waiting = asyncio.create_task(consumer.getmany(timeout_ms=10_000))
    await asyncio.sleep(0)  # it waits for the first message now
    consumer._take([RdRecord("t", 0, 0, b"k", b"v")])  # a message arrives ...
    waiting.cancel()  # ... and the worker is killed, in the same turn
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_message_that_arrives_is_handed_out() -> None:
    consumer = waiting_consumer()
    waiting = asyncio.create_task(consumer.getmany(timeout_ms=10_000))
    await asyncio.sleep(0)
    consumer._take([RdRecord("t", 2, 7, b"k", b"v")])
    batch = await asyncio.wait_for(waiting, 5)
    assert [(tp.partition, [r.offset for r in rs]) for tp, rs in batch.items()] == [(2, [7])]
