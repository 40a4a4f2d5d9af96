"""Publishing a request waits for the broker's ack, but never past a bound: a broker that is
away (paused, partitioned) makes a 503 `bus_unavailable` in seconds, not a hang."""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime.http import ApiError
from schemas.codec import envelope_for
from schemas.enqueue import EnqueueTask
from schemas.topics import ENQUEUE_REQUESTS
from services.ingest.bus import Publisher


class SilentBroker:
    """A producer whose broker never acknowledges."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent += 1
        await asyncio.Event().wait()


def envelope() -> object:
    task = EnqueueTask(task_id="a" * 32, template_task_id="b" * 32, queue_name="q", input={})
    return envelope_for(ENQUEUE_REQUESTS, task, user="alice")


@pytest.mark.parametrize(("bound_s", "within_s", "waits_s"), [(0.3, None, 0.3), (5.0, 0.2, 0.2)])
async def test_a_broker_that_does_not_answer_is_a_503_within_the_bound(
    bound_s: float, within_s: float | None, waits_s: float
) -> None:
    broker = SilentBroker()
    publisher = Publisher(broker, "t.", timeout_s=bound_s)
    started = time.monotonic()
    # The broker never answers: without the bound the publish would wait for ever.
    async with asyncio.timeout(60):
        with pytest.raises(ApiError) as raised:
            await publisher.publish(ENQUEUE_REQUESTS, envelope(), within_s=within_s)  # type: ignore[arg-type]
    took = time.monotonic() - started
    assert raised.value.status == 503
    assert raised.value.code == "bus_unavailable"
    assert "Idempotency-Key" in raised.value.message
    assert raised.value.headers == {"Retry-After": "5"}
    assert took >= waits_s  # it waited what it was given ...
    assert within_s is None or took < bound_s  # ... and a nearer deadline, not the bound
    assert broker.sent == 1
