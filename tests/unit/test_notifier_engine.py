"""The notifier's engine against fakes of the state topic and of the notifications topic: what
a restart keeps, at every point a crash can hit (no network)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from runtime.retry import RetriableError
from schemas.heartbeat import AgentHeartbeat
from schemas.notifications import Notification
from schemas.notifier_state import NotifierState
from services.notifier.alerts import Grouping
from services.notifier.engine import Engine
from services.notifier.errors import BusUnavailable
from services.notifier.machines import MachineLimits
from services.notifier.queues import QueueLimits
from services.notifier.state import Memory
from services.notifier.statelog import Record

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Topic:
    """The state topic: records in order; `compacted()` is what a reader may get instead."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.fail_after: int | None = None  # writes that succeed before the broker goes away

    async def write(self, records: Sequence[Record]) -> None:
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise BusUnavailable("broker away")
            self.fail_after -= 1
        self.records += records

    def compacted(self) -> list[Record]:
        latest = {key: (i, state) for i, (key, state) in enumerate(self.records)}
        return [(k, s) for k, (_, s) in sorted(latest.items(), key=lambda kv: kv[1][0]) if s]


class Bus:
    """The notifications topic."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.down = False

    async def __call__(self, notification: Notification) -> None:
        if self.down:
            raise BusUnavailable("broker away")
        self.sent.append(notification)


def engine(topic: Topic, bus: Bus, started: float = 0.0) -> Engine:
    memory = Memory(
        Grouping(wait_s=1.0, max_wait_s=10.0),
        MachineLimits(missed=3),
        QueueLimits(),
        at(started),
    )
    return Engine(memory, topic.write, bus)


async def storm(e: Engine, machines: int, t: float) -> None:
    for i in range(machines):
        await _beat(e, AgentHeartbeat(machine_id=f"m{i:03d}", interval_s=1.0), t)


async def _beat(e: Engine, hb: AgentHeartbeat, t: float) -> None:
    await e.persist(e.memory.machines.heartbeat(hb, at(t), at(t)))


async def run_clock(e: Engine, start: float, end: float, step: float = 0.25) -> None:
    t = start
    while t <= end:
        await e.tick(at(t))
        t += step


def firing(bus: Bus) -> list[Notification]:
    return [n for n in bus.sent if n.status == "firing"]


@pytest.mark.parametrize("compact", [False, True], ids=["log", "compacted"])
async def test_a_restart_after_the_storm_was_told_does_not_tell_it_again(compact: bool) -> None:
    topic, bus = Topic(), Bus()
    first = engine(topic, bus)
    await storm(first, 100, 0)
    await run_clock(first, 0, 6)
    [told] = firing(bus)
    assert len(told.subjects) == 100
    second = engine(topic, bus, started=7)
    second.restore(topic.compacted() if compact else topic.records)
    await second.send_outbox()
    await run_clock(second, 7, 30)
    assert firing(bus) == [told]
    for i in range(100):  # delivered again after the crash: heard before the silence began
        hb = AgentHeartbeat(machine_id=f"m{i:03d}", interval_s=1.0)
        await second.persist(second.memory.machines.heartbeat(hb, at(0), at(30.5)))
    await run_clock(second, 30.5, 30.9)
    assert [n.status for n in bus.sent] == ["firing"]
    await storm(second, 100, 31)
    await run_clock(second, 31, 33)
    [back] = [n for n in bus.sent if n.status == "resolved"]
    assert back.subjects == told.subjects


async def test_alerts_pending_at_a_crash_are_told_after_the_restart_once() -> None:
    topic, bus = Topic(), Bus()
    first = engine(topic, bus)
    await storm(first, 100, 0)
    await run_clock(first, 0, 3.5)  # silent for 3.5 s: offline, pending, not yet grouped out
    assert bus.sent == []
    second = engine(topic, bus, started=3.6)
    second.restore(topic.records)
    await run_clock(second, 3.75, 20)
    [told] = firing(bus)
    assert len(told.subjects) == 100


async def test_a_crash_between_outbox_and_publish_publishes_the_same_notification() -> None:
    topic, bus = Topic(), Bus()
    first = engine(topic, bus)
    await storm(first, 3, 0)
    bus.down = True
    with pytest.raises(RetriableError):
        await run_clock(first, 0, 6)
    assert bus.sent == []
    [(key, state)] = [r for r in topic.records if r[0].startswith("outbox:")]
    assert state is not None
    assert state.outbox is not None
    bus.down = False
    second = engine(topic, bus, started=7)
    second.restore(topic.records)
    await second.send_outbox()
    [told] = bus.sent
    assert told.id == state.outbox.notification.id
    await run_clock(second, 7, 20)
    assert bus.sent == [told]
    assert topic.records[-1] == (key, None)  # the outbox is emptied once it is out


async def test_a_crash_after_publish_before_the_records_repeats_only_that_id() -> None:
    topic, bus = Topic(), Bus()
    first = engine(topic, bus)
    await storm(first, 3, 0)
    await run_clock(first, 0, 3.5)  # offline, pending: written
    topic.fail_after = 1  # the outbox record is written; the records after the publish are not
    with pytest.raises(RetriableError):
        await run_clock(first, 3.75, 6)
    [told] = bus.sent
    second = engine(topic, bus, started=7)
    topic.fail_after = None
    second.restore(topic.records)
    await second.send_outbox()
    await run_clock(second, 7, 20)
    assert [n.id for n in bus.sent] == [told.id, told.id]


async def test_a_failed_write_is_written_by_the_next_one() -> None:
    topic, bus = Topic(), Bus()
    e = engine(topic, bus)
    topic.fail_after = 0
    with pytest.raises(BusUnavailable):
        await _beat(e, AgentHeartbeat(machine_id="gb1", interval_s=1.0), 0)
    topic.fail_after = None
    await e.persist([])
    assert topic.records == [
        ("machine:gb1", NotifierState(machine=e.memory.machines.machines["gb1"]))
    ]
