"""The notifier's rules at work: inputs and the timer change the memory; every change is written
to the state topic before the input's offset is committed; due notifications go out through an
outbox.

Sending a notification, in order, and why:
1. the alert book moves on and the notification goes into the outbox, written to the state
   topic together with what it means for its alerts (one record: atomic);
2. the notification is published;
3. the alerts' own records are written, then the outbox record is deleted.
A crash before 1 leaves the alerts pending: they are sent after the restart. A crash between 1
and 3 leaves the outbox record: it is published again, with the same id, after the restart. So
a restarted notifier neither re-fires an alert it already told nor loses one it has not told.
Within one write, outbox entries go first and outbox deletions last (see `_write_order`), so a
write cut short never leaves an alert's record without the entry that explains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from runtime import metrics
from runtime.retry import RetriableError
from schemas.base import utcnow
from schemas.heartbeat import AgentHeartbeat
from schemas.notifications import Notification
from schemas.notifier_state import OutboxEntry
from schemas.resources import QueueState
from services.notifier import keys
from services.notifier.alerts import fingerprint
from services.notifier.state import Memory
from services.notifier.statelog import Record

log = logging.getLogger(__name__)

Publish = Callable[[Notification], Awaitable[None]]
Write = Callable[[list[Record]], Awaitable[None]]


class Engine:
    """Applies inputs and ticks to the memory and keeps the state topic in step with it."""

    def __init__(self, memory: Memory, write: Write, publish: Publish) -> None:
        self.memory, self._write, self._publish = memory, write, publish
        self._dirty: dict[str, None] = {}  # keys whose record is not written yet, in order
        self._lock = asyncio.Lock()  # one write at a time: the topic gets records in order
        self._kinds: set[str] = set()  # kinds given a gauge value, so that one back to 0 shows 0

    def restore(self, records: Iterable[Record]) -> int:
        """Replay the state topic into the memory; returns how many records were read."""
        count = 0
        for key, state in records:
            self.memory.apply(key, state)
            count += 1
        self._gauge()
        return count

    async def heartbeat(self, hb: AgentHeartbeat, sent_at: datetime) -> None:
        """A heartbeat arrived; returns once what it changed is durable."""
        await self.persist(self.memory.machines.heartbeat(hb, sent_at, utcnow()))

    async def queue(self, queue: QueueState) -> None:
        """A queue's new state arrived; returns once what it changed is durable."""
        await self.persist(self.memory.queues.state(queue, utcnow()))

    async def tick(self, now: datetime) -> None:
        """The timer: machines gone silent, notifications due, the outbox published."""
        await self.persist(self.memory.machines.tick(now))
        async with self._lock:
            batches = self.memory.book.due(now)
            for batch in batches:
                entry = OutboxEntry(notification=batch.notification, alerts=batch.alerts)
                self.memory.outbox[batch.notification.id] = entry
                self._dirty[keys.outbox(batch.notification.id)] = None
            if batches:
                await self._write_dirty()
        await self.send_outbox()

    async def send_outbox(self) -> None:
        """Publish what the outbox holds (durably), then record that it is out."""
        for nid, entry in list(self.memory.outbox.items()):
            if keys.outbox(nid) in self._dirty:
                continue  # not durable yet: publishing it could lose what it means on a crash
            await self._publish(entry.notification)
            del self.memory.outbox[nid]
            changed = [keys.alert(fingerprint(r.kind, r.subject)) for r in entry.alerts]
            await self.persist([*changed, keys.outbox(nid)])
            log.info(
                "sent %s %s: %s",
                entry.notification.kind,
                entry.notification.status,
                entry.notification.subject,
            )
        self._gauge()

    async def persist(self, changed: Iterable[str]) -> None:
        """Write the current record of every changed key (and of any left from a failed write);
        returns once the broker has them."""
        for key in changed:
            self._dirty[key] = None
        if not self._dirty:
            return
        async with self._lock:
            await self._write_dirty()

    async def _write_dirty(self) -> None:
        if not self._dirty:
            return
        batch, self._dirty = self._dirty, {}
        records = [(key, self.memory.current(key)) for key in batch]
        try:
            await self._write(sorted(records, key=_write_order))
        except RetriableError:
            for key in batch:
                self._dirty.setdefault(key)
            raise

    async def run(self, stop: asyncio.Event, tick_s: float) -> None:
        """Tick every `tick_s` until `stop` is set; a failed tick is retried by the next one."""
        failing = False
        while not stop.is_set():
            try:
                await self.tick(utcnow())
            except RetriableError as exc:
                if not failing:
                    log.warning("tick failed (%s); retrying every tick", exc)
                failing = True
            else:
                if failing:
                    log.info("ticks work again")
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)

    def _gauge(self) -> None:
        firing = self.memory.book.firing()
        self._kinds.update(firing)
        for kind in self._kinds:
            metrics.ALERTS_FIRING.labels(kind).set(firing.get(kind, 0))


def _write_order(record: Record) -> int:
    """Outbox entries first (they explain the alert records after them), outbox deletions last
    (a crash part-way through a write must not lose an entry before its alerts are written)."""
    key, state = record
    if key.startswith(keys.OUTBOX):
        return 0 if state is not None else 2
    return 1
