"""The latest GPU heartbeat of every machine, read from `mlbus.heartbeats`.

Why every partition, without a consumer group: the join needs every machine's heartbeat, and a
group would split machines between monitor replicas, each of which polls ClearML whole and
would then publish half-blind states. Nothing is committed: the state is "the latest heartbeat
per machine", rebuilt at start by reading back `lookback_s` (found by time, per partition), so
a restarted monitor knows which machines are up before its first tick.

Scale limit: one process decodes every heartbeat: 1,000 machines at one heartbeat a second is
about 1,000 small JSON messages/s, a few percent of a core; beyond some ten thousand a second,
shard by partition in a group and merge the per-partition states downstream (the compacted
state topic keyed by machine allows that). Monitor replicas each read all of it and publish the
same states; run one, or accept the duplicates (the topic is compacted, the writes idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from runtime.broadcast import open_reader
from runtime.settings import BusSettings
from schemas.base import utcnow
from schemas.codec import SchemaError, decode
from schemas.heartbeat import AgentHeartbeat
from schemas.topics import HEARTBEATS
from services.monitor.resources import Beat

log = logging.getLogger(__name__)
#: Metadata reads (a quarter second apart) before a missing topic is an error.
METADATA_TRIES = 40


class HeartbeatBook:
    """Latest heartbeat per machine (pure; the feed fills it)."""

    def __init__(self) -> None:
        self.latest: dict[str, Beat] = {}

    def observe(self, heartbeat: AgentHeartbeat, at: datetime, now: datetime) -> None:
        """Keep `heartbeat` unless a newer one is known; a time in the future (clock skew) is
        taken as now."""
        at = min(at, now)
        known = self.latest.get(heartbeat.machine_id)
        if known is None or at >= known.at:
            self.latest[heartbeat.machine_id] = Beat(heartbeat, at)


class HeartbeatFeed:
    """Reads every partition of the heartbeat topic into a HeartbeatBook."""

    def __init__(self, settings: BusSettings, lookback_s: float) -> None:
        self.book = HeartbeatBook()
        self._settings, self._lookback_s = settings, lookback_s
        self._topic = HEARTBEATS.named(settings.topic_prefix)
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Assign every partition and position each `lookback_s` back (its end if nothing is)."""
        self._consumer, _ = await open_reader(
            self._settings, self._topic, name="heartbeats", start=self._lookback_s
        )

    async def stop(self) -> None:
        """Stop reading."""
        if self._consumer is not None:
            await self._consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set; a broker hiccup is logged and reading carries on."""
        assert self._consumer is not None, "start() first"
        while not stop.is_set():
            try:
                batch = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            except KafkaError as exc:  # the consumer reconnects by itself
                log.warning("heartbeat feed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            now = utcnow()
            for records in batch.values():
                for record in records:
                    self._take(record.value, now)

    def _take(self, raw: bytes | None, now: datetime) -> None:
        try:
            envelope = decode(HEARTBEATS, raw)
        except SchemaError as exc:  # the notifier dead-letters these; here it is just skipped
            log.debug("unreadable heartbeat skipped: %s", exc)
            return
        heartbeat = envelope.payload
        assert isinstance(heartbeat, AgentHeartbeat)
        self.book.observe(heartbeat, envelope.created_at, now)
