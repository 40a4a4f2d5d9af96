"""A second enqueuer joining while the first has clones in flight (a rebalance mid-burst) makes no
request cloned twice: the first finishes and commits what it holds before its partitions move.

The race has to be there to lose, so the test proves it was, from records the enqueuer does not
write: the broker's (the group was rebalancing while the simulator's own record shows clone calls
of the first enqueuer in flight) and the simulator's (the second enqueuer then cloned requests of
its own, so partitions did move). The guarantee is read from the simulator too: one clone per
request, and no request ever in the hands of both enqueuers at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import httpx
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from clearml_sim.journal import CallRecord
from clearml_sim.testing import SimServer
from services.enqueuer.handlers import REQUEST_TAG
from tests.conftest import Bus
from tests.fixtures import enqueuer_settings, running_enqueuer
from tests.integration.test_enqueue_faults import produce, request
from tests.support import eventually

#: Clone calls this slow keep the first enqueuer's batch in flight for several seconds (48
#: requests, 8 at a time: six rounds), longer than it takes the second to join and the first to
#: hear of the rebalance (its next heartbeat, 3 s at most).
CLONE_MS = 1500
FIRST_WAVE, SECOND_WAVE = 48, 24
REBALANCING = {ConsumerGroupState.PREPARING_REBALANCING, ConsumerGroupState.COMPLETING_REBALANCING}


def keyed(envs: list[Any]) -> list[tuple[bytes, bytes]]:
    return [(e.id.encode(), e.model_dump_json().encode()) for e in envs]


async def rebalance_seen(admin: AdminClient, group: str, deadline_s: float) -> float:
    """When the broker first reports `group` rebalancing (the simulator's clock: time.time)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        futures = admin.describe_consumer_groups([group], request_timeout=5)
        described = await asyncio.to_thread(futures[group].result)
        if described.state in REBALANCING:
            return time.time()
        await asyncio.sleep(0.02)
    raise AssertionError(f"group {group} never seen rebalancing within {deadline_s}s")


def request_of(call: CallRecord, tags_by_task: dict[str, list[str]]) -> str | None:
    """The request a call worked for: by the tag it carries, or by its task's tags."""
    tags = list(call.tags) or tags_by_task.get(call.task or "", [])
    ids = [t.removeprefix(REQUEST_TAG) for t in tags if t.startswith(REQUEST_TAG)]
    return ids[0] if ids else None


async def test_a_rebalance_mid_burst_clones_each_request_once(
    bus: Bus, sim: SimServer, mongo_db: Any
) -> None:
    first, second = [request() for _ in range(FIRST_WAVE)], [request() for _ in range(SECOND_WAVE)]
    group = f"{bus.topic_prefix}enqueuer"
    settings = enqueuer_settings(bus, sim, concurrency=8, group=group)
    admin = AdminClient({"bootstrap.servers": bus.kafka_bootstrap})
    logs = mongo_db["enqueue_logs"]
    journal = sim.sim.journal

    def clones_in_flight(at: float, session: str | None = None) -> list[CallRecord]:
        return [
            c
            for c in journal.calls("tasks.clone")
            if c.started < at < c.ended and (session is None or c.session == session)
        ]

    async def all_queued() -> bool:
        return await logs.count_documents({"status": "queued"}) == FIRST_WAVE + SECOND_WAVE

    async with httpx.AsyncClient(base_url=sim.url) as control:
        slow = {"latency_ms": CLONE_MS, "endpoints": ["tasks.clone"]}
        assert (await control.post("/_sim/faults", json=slow)).status_code == 200
        async with running_enqueuer(settings):
            await produce(bus, *keyed(first))

            async def in_flight() -> list[CallRecord]:
                return clones_in_flight(sim.sim.clock())

            first_session = (await eventually(in_flight, timeout_s=60, what="a clone in flight"))[
                0
            ].session
            async with running_enqueuer(settings.model_copy(update={"instance": "second"})):
                rebalancing_at = await rebalance_seen(admin, group, deadline_s=30)
                await produce(bus, *keyed(second))
                await eventually(all_queued, timeout_s=120, what="every request queued")
        await control.delete("/_sim/faults")

    # The race was there: the group rebalanced while the first enqueuer had clones in flight,
    # and partitions moved (the second enqueuer made clones).
    assert clones_in_flight(rebalancing_at, first_session), "no clone in flight at the rebalance"
    clones = journal.calls("tasks.clone")
    assert any(c.session != first_session for c in clones), "the second enqueuer never cloned"

    # One clone per request.
    tags = [tag for t in sim.state.tasks.values() for tag in t.get("tags", [])]
    counts = {e.id: tags.count(REQUEST_TAG + e.id) for e in first + second}
    assert {rid: n for rid, n in counts.items() if n != 1} == {}

    # No request in the hands of both enqueuers at once: the calls made for it by one are all
    # over before the other's begin.
    tags_by_task = {tid: list(t.get("tags", [])) for tid, t in sim.state.tasks.items()}
    by_request: dict[str, list[CallRecord]] = defaultdict(list)
    for call in journal.calls():
        rid = request_of(call, tags_by_task)
        if rid is not None:
            by_request[rid].append(call)
    overlapping = sorted(
        rid
        for rid, calls in by_request.items()
        if any(a.session != b.session and a.overlaps(b) for a in calls for b in calls)
    )
    assert overlapping == []
