"""One active copy among many, elected through Kafka's group membership.

Every copy of a service joins the consumer group `<prefix>mlbus-<service>-leader` on the
one-partition topic `<prefix>mlbus.<service>.leader`; whoever the group gives partition 0 to is
the active copy, the others stand by. A copy that dies (even SIGKILL) leaves the group when its
session times out (`session_timeout_ms`, 6 s here: the broker's least by default), and the group
gives the partition to a standby: failover = session timeout + one rebalance + the service's own
takeover. A rebalance (a copy joining or leaving) revokes the partition first: the active copy
stops its work (what is in hand finishes) before any copy is given it again, so two copies are
never active at once, short of a copy cut off from Kafka that keeps working (a zombie; the
service's own writes must then be idempotent, as mlbus's are by id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Gauge

from runtime import metrics
from runtime.kafka import client_auth, ensure_topics
from runtime.settings import BusSettings
from schemas.base import Model
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)
LEADER = Gauge("mlbus_leader", "1 while this copy is the active one of its service.", ["service"])
#: The active copy's work: runs until its `stop` event is set (or fails).
Work = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def leader_topic(service: str) -> TopicSpec:
    """The one-partition topic whose partition 0 makes a copy active (nothing is written)."""
    return TopicSpec(f"mlbus.{service}.leader", "none", 1, Model, "Leader")


class Leadership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs `work` while this copy holds partition 0 of the service's leader topic."""

    def __init__(
        self,
        settings: BusSettings,
        service: str,
        work: Work,
        *,
        session_timeout_ms: int = 6000,
        heartbeat_interval_ms: int = 1000,
    ) -> None:
        self._settings, self._service, self._work = settings, service, work
        self._session_ms, self._heartbeat_ms = session_timeout_ms, heartbeat_interval_ms
        self._term: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.terms = 0  # how often this copy became active

    @property
    def active(self) -> bool:
        """Whether this copy is the active one now."""
        return self._task is not None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Stop the work before the group may give the partition to another copy."""
        await self._resign()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Holding partition 0: become active."""
        if self._task is None and any(tp.partition == 0 for tp in assigned):
            self.terms += 1
            self._term = asyncio.Event()
            self._task = asyncio.create_task(self._work(self._term), name=f"{self._service}-active")
            LEADER.labels(self._service).set(1)
            log.info("%s: this copy is now active (term %d)", self._service, self.terms)

    async def _resign(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        assert self._term is not None
        self._term.set()
        try:
            await task
        finally:
            LEADER.labels(self._service).set(0)
            metrics.ready(self._service, True)  # a standby is ready: it can take over
            log.info("%s: this copy stands by", self._service)

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, and be active whenever elected, until `stop` is set; a failure of the
        active work is raised here."""
        spec = leader_topic(self._service)
        await ensure_topics(self._settings, [spec])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=f"{self._settings.topic_prefix}mlbus-{self._service}-leader",
            client_id=self._settings.instance,
            enable_auto_commit=False,
            session_timeout_ms=self._session_ms,
            heartbeat_interval_ms=self._heartbeat_ms,
            **client_auth(self._settings),
        )
        consumer.subscribe([spec.named(self._settings.topic_prefix)], listener=self)
        await consumer.start()
        LEADER.labels(self._service).set(0)
        metrics.ready(self._service, True)
        log.info("%s: standing by for partition 0 of %s", self._service, spec.name)
        try:
            while not stop.is_set():
                await consumer.getmany(timeout_ms=500)  # keeps the membership alive
                if self._task is not None and self._task.done():
                    self._task.result()  # the active work failed: raise it
                    if not stop.is_set():
                        raise RuntimeError(f"{self._service}: the active work ended by itself")
        finally:
            with contextlib.suppress(Exception):
                await self._resign()
            await consumer.stop()
