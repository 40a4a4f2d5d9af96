"""The resource loop against fakes on a fake clock: what goes out, when, what an outage costs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.clearml import ClearMLUnavailable
from runtime.retry import RetryPolicy
from schemas.heartbeat import AgentHeartbeat, GpuReading
from schemas.resources import QueueState, ResourceState
from services.monitor.errors import PublishFailed
from services.monitor.resource_poller import ResourcePoller, ResourceRules
from services.monitor.resources import Beat

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
State = ResourceState | QueueState


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeClearML:
    def __init__(self) -> None:
        self.down = False
        self.metrics_down = False
        self.workers_rows: list[dict[str, Any]] = [
            {
                "id": "box-a:gpu0",
                "ip": "10.0.0.11",
                "task": None,
                "queues": [{"id": "qa", "name": "gpu-a100"}],
            }
        ]
        self.queue_rows: list[dict[str, Any]] = [{"id": "qa", "name": "gpu-a100", "entries": []}]
        self.metric_rows: list[dict[str, Any]] = [
            {"queue": "qa", "avg_waiting_times": [4.0], "queue_lengths": [1.0]}
        ]

    async def workers(self, last_seen_s: float) -> list[dict[str, Any]]:
        if self.down:
            raise ClearMLUnavailable("workers.get_all: HTTP 503")
        return self.workers_rows

    async def queues(self) -> list[dict[str, Any]]:
        return self.queue_rows

    async def queue_metrics(
        self, queue_ids: list[str], now: float, window_s: int, interval_s: int
    ) -> list[dict[str, Any]]:
        if self.metrics_down:
            raise ClearMLUnavailable("queues.get_queue_metrics: timeout")
        return self.metric_rows


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[State]] = []
        self.down = False

    async def __call__(self, states: Sequence[State]) -> None:
        if self.down:
            raise PublishFailed("broker away")
        self.batches.append(list(states))

    def keys(self, batch: int = -1) -> list[str]:
        return [
            s.machine_id if isinstance(s, ResourceState) else s.queue_id
            for s in self.batches[batch]
        ]


def gpu(util: float) -> GpuReading:
    return GpuReading(
        index=0,
        uuid="GPU-0",
        name="L40S",
        utilization_pct=util,
        memory_used_mb=10.0,
        memory_total_mb=46068.0,
    )


def poller(
    clearml: FakeClearML, beats: dict[str, Beat], clock: Clock
) -> tuple[ResourcePoller, Sink, Sink]:
    published, stored = Sink(), Sink()
    rules = ResourceRules(poll_s=5.0, refresh_s=60.0, missed=3)
    loop = ResourcePoller(
        clearml,
        beats,
        published,
        stored,
        rules,
        retry=RetryPolicy(attempts=2, base_s=0.001, cap_s=0.001),
        clock=clock,
    )
    return loop, published, stored


def heartbeat(machine: str, at: datetime, util: float = 1.0) -> Beat:
    return Beat(AgentHeartbeat(machine_id=machine, interval_s=5.0, gpus=[gpu(util)]), at)


async def test_queues_go_out_first_then_machines_then_only_changes_and_refreshes() -> None:
    clock, clearml = Clock(), FakeClearML()
    beats = {"box-a": heartbeat("box-a", T0)}
    loop, published, stored = poller(clearml, beats, clock)
    await loop.tick()
    assert [published.keys(0), published.keys(1)] == [["qa"], ["box-a"]]
    assert stored.batches == published.batches
    queue = published.batches[0][0]
    assert isinstance(queue, QueueState)
    assert (queue.free_gpus, queue.avg_wait_s, queue.avg_length) == (1, 4.0, 1.0)

    clock.advance(5)
    beats["box-a"] = heartbeat("box-a", clock.now, util=3.0)  # a wiggle: not news
    await loop.tick()
    assert len(published.batches) == 2

    clock.advance(5)
    beats["box-a"] = heartbeat("box-a", clock.now, util=98.0)  # the GPU got busy: news
    await loop.tick()
    assert [published.keys(2), published.keys(3)] == [["qa"], ["box-a"]]  # queue lost its GPU
    last_queue = published.batches[2][0]
    assert isinstance(last_queue, QueueState)
    assert last_queue.free_gpus == 0

    clock.advance(60)
    beats["box-a"] = heartbeat("box-a", clock.now, util=98.0)
    await loop.tick()
    assert published.keys(-1) == ["box-a"]  # unchanged but due for its refresh
    assert published.keys(-2) == ["qa"]


async def test_a_machine_whose_heartbeats_stop_is_published_offline() -> None:
    clock, clearml = Clock(), FakeClearML()
    clearml.workers_rows = []
    beats = {"edge-1": heartbeat("edge-1", T0)}
    loop, published, _ = poller(clearml, beats, clock)
    await loop.tick()
    clock.advance(16)  # more than 3 x 5 s without a heartbeat
    await loop.tick()
    offline = published.batches[-1][0]
    assert isinstance(offline, ResourceState)
    assert (offline.machine_id, offline.online, offline.since) == ("edge-1", False, clock.now)


async def test_a_clearml_outage_costs_a_tick_and_the_loop_goes_on() -> None:
    clock, clearml = Clock(), FakeClearML()
    loop, published, _ = poller(clearml, {}, clock)
    clearml.down = True
    await loop.tick()
    assert published.batches == []
    clearml.down = False
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert published.keys(0) == ["qa"]


async def test_unsent_states_go_out_on_the_next_tick() -> None:
    clock, clearml = Clock(), FakeClearML()
    loop, published, stored = poller(clearml, {}, clock)
    published.down = True
    await loop.tick()
    assert stored.batches == []  # nothing stored that the topic did not get
    published.down = False
    clock.advance(5)
    await loop.tick()
    assert published.keys(0) == ["qa"]
    assert published.keys(1) == ["box-a"]


async def test_when_queue_metrics_fail_the_last_averages_stand() -> None:
    clock, clearml = Clock(), FakeClearML()
    loop, published, _ = poller(clearml, {}, clock)
    await loop.tick()
    clearml.metrics_down = True
    clock.advance(60)
    await loop.tick()
    queue = published.batches[-2][0]
    assert isinstance(queue, QueueState)
    assert queue.avg_wait_s == 4.0
