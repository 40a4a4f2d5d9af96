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


class Msg:
    """A librdkafka message, as the consumer's thread reads it."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> None:
        return None


class Polls:
    """librdkafka's `poll`: each call may first run a rebalance (the revocation moves the
    consumer's generation, as `_on_revoke` does), then returns its message or None."""

    def __init__(self, owner: RdGroupConsumer, script: list[tuple[bool, Msg | None]]) -> None:
        self._owner, self._script = owner, script

    def poll(self, _timeout: float) -> Msg | None:
        if not self._script:
            return None
        revokes, message = self._script.pop(0)
        if revokes:
            self._owner._generation += 1
        return message


def polling(script: list[tuple[bool, Msg | None]]) -> RdGroupConsumer:
    consumer = RdGroupConsumer.__new__(RdGroupConsumer)
    consumer._generation = 0
    consumer._topic = "t"
    consumer._consumer = Polls(consumer, script)
    return consumer


def offsets(consumer: RdGroupConsumer) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in consumer._poll_batch()]


def test_messages_of_the_assignment_a_poll_ran_are_kept_and_those_before_it_dropped() -> None:
    """Found by the two-of-everything test: one poll ran the revocation and the assignment that
    gave the survivor a killed copy's partitions, and returned their first uncommitted message;
    the whole batch was dropped, the fetch position had moved past it: the calls the killed
    copy held were never handled (nor logged)."""
    consumer = polling(
        [(False, Msg(0, 5)), (False, Msg(0, 6)), (True, Msg(3, 40)), (False, Msg(3, 41))]
    )
    assert offsets(consumer) == [(3, 40), (3, 41)]


def test_a_batch_whose_last_poll_ran_a_revocation_is_dropped() -> None:
    consumer = polling([(False, Msg(0, 5)), (False, Msg(0, 6)), (True, None)])
    assert offsets(consumer) == []
    consumer = polling([(False, Msg(0, 5)), (False, None)])
    assert offsets(consumer) == [(0, 5)]
