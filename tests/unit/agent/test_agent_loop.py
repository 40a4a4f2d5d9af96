"""The tick loop and the Kafka publisher, with doubles for the producer and the probes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from runtime.worker import bound
from schemas.codec import decode
from schemas.heartbeat import AgentHeartbeat
from schemas.topics import HEARTBEATS
from services.agent.app import HeartbeatLoop, next_tick
from services.agent.bus import HeartbeatPublisher
from services.agent.collector import Collector, Machine
from services.agent.errors import PublishFailedError
from services.agent.simulated import SimulatedProbe


class FakeProducer:
    """aiokafka's send(): returns a delivery future; fails while `down`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.down = False

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> asyncio.Future[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.down:
            done.set_exception(KafkaTimeoutError("broker away"))
        else:
            self.sent.append((topic, key or b"", value or b""))
            done.set_result(None)
        return done

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> None:
        await (await self.send(topic, value, key))


def _collector(machines: int = 2) -> Collector:
    return Collector(
        [Machine(f"m{k}", SimulatedProbe(1, seed=k, machine_id=f"m{k}")) for k in range(machines)],
        interval_s=0.01,
    )


async def test_publisher_keys_by_machine_id_and_reports_kafka_errors() -> None:
    producer = FakeProducer()
    pub = HeartbeatPublisher(bound(HEARTBEATS, producer, "agent", "t."))
    beats = _collector(3).collect()
    assert await pub.publish(beats) == []
    assert [(t, k) for t, k, _ in producer.sent] == [
        ("t.mlbus.heartbeats", b"m0"),
        ("t.mlbus.heartbeats", b"m1"),
        ("t.mlbus.heartbeats", b"m2"),
    ]
    assert decode(HEARTBEATS, producer.sent[0][2]).payload == beats[0]
    producer.down = True
    failed = await pub.publish(beats)
    assert [f.machine_id for f in failed] == ["m0", "m1", "m2"]
    assert all(isinstance(f, PublishFailedError) for f in failed)


async def test_loop_survives_a_broker_outage_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = FakeProducer()
    loop = HeartbeatLoop(
        _collector(), HeartbeatPublisher(bound(HEARTBEATS, producer, "agent")), 0.01
    )
    producer.down = True
    with caplog.at_level(logging.DEBUG, logger="services.agent"):
        for _ in range(4):
            await loop.tick()
        producer.down = False
        await loop.tick()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 2 heartbeats not published" in warnings[0].getMessage()
    assert "after 8 lost heartbeats" in caplog.records[-1].getMessage()
    assert len(producer.sent) == 2


async def test_loop_survives_a_probe_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        simulated = False

        def read(self) -> Any:
            raise RuntimeError("driver bug")

        def close(self) -> None: ...

    producer = FakeProducer()
    collector = Collector([Machine("m", Broken())], interval_s=0.01)
    loop = HeartbeatLoop(collector, HeartbeatPublisher(bound(HEARTBEATS, producer, "agent")), 0.01)
    await loop.tick()
    assert "heartbeat tick failed" in caplog.text
    assert producer.sent == []


async def test_run_ticks_until_stop_then_returns() -> None:
    stop = asyncio.Event()
    ticks: list[list[AgentHeartbeat]] = []

    class Recorder:
        async def publish(self, beats: list[AgentHeartbeat]) -> list[PublishFailedError]:
            ticks.append(beats)
            if len(ticks) == 3:
                stop.set()
            return []

    loop = HeartbeatLoop(_collector(), Recorder(), 0.01)  # type: ignore[arg-type]
    await asyncio.wait_for(loop.run(stop), timeout=5)
    assert len(ticks) == 3
    assert [b.machine_id for b in ticks[0]] == ["m0", "m1"]


def test_next_tick_keeps_the_cadence_and_skips_missed_ticks() -> None:
    assert next_tick(10.0, 5.0, now=11.0) == 15.0
    assert next_tick(10.0, 5.0, now=15.0) == 20.0
    assert next_tick(10.0, 5.0, now=27.0) == 30.0
