"""Which requests a monitor copy follows: those of its partitions (a double for MongoDB)."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from services.monitor.errors import StoreUnavailable
from services.monitor.lifecycle import Watched, WatchSet
from services.monitor.shares import Shares, partition_of

TOPIC = "mlbus.events.task"


def watched(rid: str) -> Watched:
    return Watched(rid, f"clone-{rid}", "queued", "alice", "t1", "gpu-a100")


class Store:
    def __init__(self, rids: list[str]) -> None:
        self.rids, self.down = rids, False

    async def active(self) -> list[Watched]:
        if self.down:
            raise StoreUnavailable("away")
        return [watched(r) for r in self.rids]


def test_a_key_goes_where_kafkas_partitioner_sends_it() -> None:
    for rid in ("a" * 16, "5f0c8a9e2b7d4c1f", "request-0001"):
        assert partition_of(rid, 3) == (murmur2(rid.encode()) & 0x7FFFFFFF) % 3


async def test_assigned_partitions_load_their_requests_and_revoked_ones_drop_them() -> None:
    rids = [f"request-{n:04d}" for n in range(30)]
    watch, store = WatchSet(), Store(rids)
    shares = Shares(watch, store, 3)
    await shares.on_partitions_assigned([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)])
    mine = {r for r in rids if partition_of(r, 3) in {0, 2}}
    assert set(watch.items) == mine
    assert all(shares.owns(r) for r in mine)
    await shares.on_partitions_revoked([TopicPartition(TOPIC, 2)])
    assert set(watch.items) == {r for r in rids if partition_of(r, 3) == 0}
    assert not any(shares.owns(r) for r in rids if partition_of(r, 3) == 2)


async def test_a_load_that_fails_is_tried_again_at_the_next_tick() -> None:
    rids = [f"request-{n:04d}" for n in range(10)]
    watch, store = WatchSet(), Store(rids)
    shares = Shares(watch, store, 3)
    store.down = True
    await shares.on_partitions_assigned([TopicPartition(TOPIC, p) for p in range(3)])
    assert len(watch) == 0
    store.down = False
    async with shares.lock:
        await shares.load()
    assert set(watch.items) == set(rids)
