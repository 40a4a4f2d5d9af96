"""The notifier's Kafka adapter for its state topic (compacted, one partition): records written
in order and acknowledged by the broker, and the whole topic read back at start-up.

Why not faust-streaming's tables. A spike (faust-streaming 0.15.3, aiokafka 0.14, this project's
Kafka 4.1.1 in KRaft mode, a 2-core machine; an App with one in-memory Table of 1,000 keys and
its changelog topic, fed by an agent) measured:
- first start, changelog and assignor topics created by faust: agent running after 1.5 s;
- restart after a clean stop (SIGTERM): the table recovered, all 1,000 keys, after 2.1-2.2 s;
  the worker's own shutdown took another ~1.4 s;
- restart after a crash (SIGKILL): 55-60 s, faust's default broker_session_timeout of 60 s
  (the dead member must time out of the group before partitions, and the table, are assigned);
  9.4 s with the timeout set to 10 s, which is what our aiokafka consumers wait as well;
- with the broker's auto-creation off (as here), a source topic faust did not create makes
  the worker log "Topic not found" ten times a second instead of failing.
So faust works and recovers its state. It is not used because of how it commits, not how fast
it starts: an agent's offsets are committed on faust's own timer once events are acked, and
table changes are sent to the changelog in the background, unordered with respect to the
notifications published. The notifier needs the opposite order, the one every mlbus worker
keeps: the decision durable (outbox record), then the notification published, then the offset
committed (see `engine.py`). faust would also bring its own worker, signal handling, logging
and consumer loop beside `runtime.consumer` (dead letters, metrics, drain on SIGTERM), and its
tables are partitioned like their source topics, while grouping a storm is global. This topic
costs one write per change of state (not per heartbeat) and a read to its end at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from runtime.broadcast import open_reader, reading, to_end
from runtime.settings import BusSettings
from runtime.worker import Publisher
from schemas.codec import SchemaError, decode
from schemas.notifier_state import NotifierState
from schemas.topics import NOTIFIER_STATE
from services.notifier.errors import BusUnavailable

log = logging.getLogger(__name__)

Record = tuple[str, NotifierState | None]


class StateLog:
    """Writes state records (None: a tombstone) and waits until the broker has them all."""

    def __init__(self, states: Publisher[NotifierState]) -> None:
        self._states = states

    async def write(self, records: Sequence[Record]) -> None:
        """Write in order (one partition: the topic keeps the order) and wait for every ack."""
        try:
            sent = [await self._send(key, state) for key, state in records]
            await asyncio.gather(*sent)
        except KafkaError as exc:
            raise BusUnavailable(f"{self._states.topic}: {exc!r}") from exc

    async def _send(self, key: str, state: NotifierState | None) -> asyncio.Future[object]:
        if state is None:
            return await self._states.delete(key)
        return await self._states.hand(state, key=key, trace={"service": "notifier"})


async def read_all(settings: BusSettings) -> list[Record]:
    """Every record of the state topic, oldest first, up to its end at the time of the call."""
    topic = NOTIFIER_STATE.named(settings.topic_prefix)
    async with reading(settings, topic, name="state", start="beginning", partitions=[0]) as (
        consumer,
        tps,
    ):
        records = [_record(m.key, m.value) async for m in to_end(consumer, tps)]
    return [r for r in records if r[0]]


def _record(key: bytes | None, value: bytes | None) -> Record:
    name = key.decode() if key else ""
    if value is None:
        return name, None
    try:
        return name, decode(NOTIFIER_STATE, value).payload
    except SchemaError as exc:  # a newer notifier's record: keep the rest, say which was dropped
        log.warning("state record %s unreadable (%s); skipped", name, exc)
        return "", None


class StateTail:
    """A standby's warm copy of the state topic: read from the beginning and followed, kept
    compacted (the last record of each key, in the order the topic would keep them), so that a
    takeover reads only what was written since, not the whole topic."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self._tp = TopicPartition(NOTIFIER_STATE.named(settings.topic_prefix), 0)
        self._latest: dict[str, NotifierState] = {}
        self._position = -1  # the next offset to read; -1 until the first read
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic until `stop` is set."""
        consumer, _ = await open_reader(
            self._settings,
            self._tp.topic,
            name="state-tail",
            start="beginning",
            partitions=[self._tp.partition],
        )
        self._consumer = consumer
        try:
            while not stop.is_set():
                batch = await consumer.getmany(self._tp, timeout_ms=200)
                for message in batch.get(self._tp, []):
                    key, state = _record(message.key, message.value)
                    if key:
                        self._latest.pop(key, None)
                        if state is not None:
                            self._latest[key] = state
                self._position = await consumer.position(self._tp)
        finally:
            self._consumer = None
            await consumer.stop()

    async def to_end(self, timeout_s: float = 30.0) -> list[Record]:
        """Every key's last record, up to the topic's end at the time of the call."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._consumer is None:
            if asyncio.get_running_loop().time() > deadline:
                raise BusUnavailable("state tail not started")
            await asyncio.sleep(0.05)
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        while self._position < end:
            if asyncio.get_running_loop().time() > deadline:
                raise BusUnavailable(f"state topic not read to its end in {timeout_s:.0f} s")
            await asyncio.sleep(0.02)
        return list(self._latest.items())
