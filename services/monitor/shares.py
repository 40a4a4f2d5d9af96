"""Which requests this copy of the monitor follows: those whose key (the request id) falls in the
partitions of the task-events topic that the consumer group gave it.

The group splits the TaskEnqueued events by key; this listener makes the rest follow: on
assignment, the active requests of the new partitions are loaded from MongoDB (every copy's
changes are recorded there, so a partition that moves carries its requests' state with it); on
revocation, the poll tick in flight finishes first, then the requests of the lost partitions are
dropped. A copy killed outright loses its partitions when its session times out (the consumer's
`session_timeout_ms`: `MLBUS_MONITOR_GROUP_SESSION_S`, 6 s); the survivor loads them then. A
load that fails (MongoDB away) is tried again at the next tick.

Two copies never follow one request for long (only between a revocation's drop and the next
owner's load is a request followed by none), and even then a change is recorded once:
`TaskLogStore.record` is guarded by the document's own status. Its event goes out with it, at
least once: a crash between the record and the publish leaves the event in the document's
outbox, and the next owner publishes it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from services.monitor.errors import StoreUnavailable
from services.monitor.lifecycle import Watched, WatchSet

log = logging.getLogger(__name__)
_PARTITIONER = DefaultPartitioner()


def partition_of(request_id: str, partitions: int) -> int:
    """The partition a key goes to, as the producers choose it (Kafka's murmur2 partitioner)."""
    every = list(range(partitions))
    return int(_PARTITIONER(request_id.encode(), every, every))


class ActiveSource(Protocol):
    """Where the active requests come from (MongoDB's enqueue_logs)."""

    async def active(self) -> list[Watched]: ...


class Shares(ConsumerRebalanceListener):  # type: ignore[misc]
    """The partitions this copy owns and the requests it follows because of them."""

    def __init__(self, watch: WatchSet, store: ActiveSource, partitions: int) -> None:
        self._watch, self._store, self._partitions = watch, store, partitions
        self.owned: set[int] = set()
        self._unloaded: set[int] = set()
        #: Held by the poll tick: a revocation waits for the tick in flight.
        self.lock = asyncio.Lock()

    def owns(self, request_id: str) -> bool:
        """Whether this copy's partitions hold the request's key."""
        return partition_of(request_id, self._partitions) in self.owned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Drop the requests of the lost partitions, once the tick in flight is done."""
        lost = {tp.partition for tp in revoked}
        if not lost:
            return
        async with self.lock:
            self.owned -= lost
            self._unloaded -= lost
            gone = [r for r in self._watch.items if partition_of(r, self._partitions) in lost]
            for request_id in gone:
                self._watch.drop(request_id)
        log.info("partitions %s revoked: %d requests no longer followed", sorted(lost), len(gone))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Own the new partitions and follow their active requests."""
        new = {tp.partition for tp in assigned} - self.owned
        async with self.lock:
            self.owned |= new
            self._unloaded |= new
            await self.load()

    async def load(self) -> None:
        """Follow the active requests of partitions not loaded yet (a failed load is tried
        again at the next tick). Call with `lock` held."""
        if not self._unloaded:
            return
        try:
            active = await self._store.active()
        except StoreUnavailable as exc:
            log.warning("active requests not read (%s); trying again next tick", exc)
            return
        loading, self._unloaded = self._unloaded, set()
        added = [
            w
            for w in active
            if partition_of(w.request_id, self._partitions) in loading and self._watch.add(w)
        ]
        for watched in added:
            log.info("following request %s (from MongoDB)", watched.request_id)
        log.info(
            "partitions %s assigned: %d active requests loaded, %d followed in all",
            sorted(loading),
            len(added),
            len(self._watch),
        )
