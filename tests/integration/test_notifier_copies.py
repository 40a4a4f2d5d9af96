"""Two notifier processes: one active, one standby (elected through Kafka's group membership).
The active one is killed (SIGKILL) in the middle of a stream of task events: the standby takes
over within the documented bound, and every notification is told exactly once (on the topic and
in MongoDB)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mlbus.stack import Fleet, Proc
from schemas.codec import decode, encode, envelope_for
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import NOTIFICATIONS, TASK_EVENTS
from services.notifier.tasks import event_id
from tests.conftest import Bus
from tests.copies import fleet_env, log_of, running_fleet, start, terms_in
from tests.support import eventually

EVENTS, RATE, KILL_AFTER = 200, 20.0, 60
#: Documented failover bound (README, "Many copies"): the election's session timeout (6 s), one
#: rebalance, the takeover's reads (state topic, recent notifications).
FAILOVER_BOUND_S = 15.0


def _terms(proc: Proc) -> list[str]:
    return [m[1] for m in terms_in(log_of(proc))]


def _active_now(proc: Proc) -> bool:
    terms = _terms(proc)
    return bool(terms) and terms[-1] == "is now active"


@pytest.fixture
async def notifiers(bus: Bus) -> AsyncIterator[Fleet]:
    async with running_fleet(fleet_env(bus)) as fleet:
        await start(fleet, "notifier", 2)
        yield fleet


async def _told(bus: Bus) -> Counter[str]:
    consumer = AIOKafkaConsumer(
        NOTIFICATIONS.named(bus.topic_prefix),
        bootstrap_servers=bus.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    told: Counter[str] = Counter()
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                told.update(decode(NOTIFICATIONS, r.value).id for r in records)
    finally:
        await consumer.stop()
    return told


async def test_the_standby_takes_over_a_killed_active_copy_and_nothing_is_told_twice(
    bus: Bus, notifiers: Fleet, mongo_db: Any
) -> None:
    copies = notifiers.copies["notifier"]

    async def one_active() -> list[Proc] | None:
        active = [c for c in copies if _active_now(c)]
        return active if len(active) == 1 else None

    leaders = await eventually(one_active, timeout_s=30, what="exactly one active copy")
    victim = leaders[0]
    survivor = next(c for c in copies if c is not victim)

    async def takeover_after(killed_at: float) -> float:
        terms_before = len(_terms(survivor))

        async def took_over() -> bool:
            return len(_terms(survivor)) > terms_before and _active_now(survivor)

        await eventually(took_over, timeout_s=FAILOVER_BOUND_S + 20, what="the takeover")
        return time.monotonic() - killed_at

    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, acks="all")
    await producer.start()
    ids, killed_at, watch = [], 0.0, None
    try:
        began = time.monotonic()
        for n in range(EVENTS):
            event = TaskEvent(
                kind=TaskEventKind.STARTED, request_id=f"request-{n:04d}", task_id="t1"
            )
            ids.append(event_id(event))
            envelope = envelope_for(TASK_EVENTS, event, id=event.request_id, user="alice")
            await producer.send_and_wait(
                TASK_EVENTS.named(bus.topic_prefix), encode(envelope), key=event.request_id.encode()
            )
            if n == KILL_AFTER:
                notifiers.kill("notifier", copies.index(victim))
                killed_at = time.monotonic()
                watch = asyncio.create_task(takeover_after(killed_at))
            await asyncio.sleep(max(0.0, began + (n + 1) / RATE - time.monotonic()))
    finally:
        await producer.stop()

    assert watch is not None
    failover_s = await watch

    async def all_told() -> Counter[str] | None:
        told = await _told(bus)
        return told if set(ids) <= set(told) else None

    told = await eventually(all_told, timeout_s=60, what="every notification told")
    told_at = time.monotonic() - killed_at
    twice = {i: n for i, n in told.items() if n > 1}
    print(  # noqa: T201 - the measurement, for the README
        f"failover {failover_s:.1f} s (every notification out {told_at:.1f} s after the kill); "
        f"{len(told)} told, {len(twice)} twice"
    )
    assert not twice, twice
    assert failover_s <= FAILOVER_BOUND_S

    async def all_stored() -> bool:
        return await mongo_db["notifications"].count_documents({"_id": {"$in": ids}}) == EVENTS

    await eventually(all_stored, timeout_s=60, what="every notification stored")
