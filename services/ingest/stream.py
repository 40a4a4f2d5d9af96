"""The live notification feed of one ingest process, fanned out to its stream subscribers.

One consumer per process, without a group, reads every partition of `mlbus.notifications` from
its end (every ingest instance needs every notification: its subscribers may be anyone). What
it reads goes into a bounded buffer, in arrival order, and to each subscriber whose filter
accepts it.

Resuming after a disconnect (the client's `Last-Event-ID`): when that id is still in the buffer,
the subscriber gets what arrived after it, in the same order as the first time; otherwise (an
older id, or this process restarted) the backlog comes from MongoDB's `notifications` (written by
the notifier), by id, which is time-ordered. The subscriber is registered *before* the backlog
is read, so nothing published meanwhile is missed; ids already sent are skipped.

A subscriber that stops reading is not allowed to hold memory: when its queue is full, its
stream is ended, and the client resumes from its last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from runtime.broadcast import open_reader
from runtime.kafka import ensure_topics
from runtime.settings import BusSettings
from schemas.codec import SchemaError, decode
from schemas.notifications import Notification
from schemas.topics import NOTIFICATIONS

log = logging.getLogger(__name__)

Accepts = Callable[[Notification], bool]


@dataclass(eq=False)
class Subscription:
    """One open stream: its filter, its queue, and the ids it was already sent."""

    accepts: Accepts
    queue: asyncio.Queue[Notification | None]
    sent: set[str] = field(default_factory=set)
    ended: bool = False

    def offer(self, notification: Notification) -> None:
        """Queue a live notification; a full queue ends the stream (the client resumes)."""
        if self.ended or not self.accepts(notification):
            return
        try:
            self.queue.put_nowait(notification)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        """Make the stream finish after what it already holds."""
        if self.ended:
            return
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.queue.full():  # no room for the end marker: drop the oldest, which resume re-sends
            self.queue.get_nowait()
            self.queue.put_nowait(None)


class NotificationHub:
    """Reads the notifications topic and serves subscribers."""

    def __init__(self, settings: BusSettings, buffer_size: int, queue_size: int) -> None:
        self._settings, self._queue_size = settings, queue_size
        self._topic = NOTIFICATIONS.named(settings.topic_prefix)
        self._recent: deque[Notification] = deque(maxlen=buffer_size)
        self._ids: OrderedDict[str, None] = OrderedDict()  # ids in `_recent`, arrival order
        self._subscribers: set[Subscription] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Position at the end of every partition, then start reading."""
        await ensure_topics(self._settings, [NOTIFICATIONS])
        consumer, _ = await open_reader(
            self._settings, self._topic, name="notifications", start="end"
        )
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(), name="notification-hub")

    async def stop(self) -> None:
        """End every stream, stop reading."""
        self.close_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def close_streams(self) -> None:
        """End every open stream (the server is shutting down; clients resume elsewhere)."""
        for subscription in list(self._subscribers):
            subscription.end()

    def running(self) -> bool:
        """True while the consumer runs."""
        return self._task is not None and not self._task.done()

    @contextlib.contextmanager
    def subscribe(
        self, accepts: Accepts, last_event_id: str | None
    ) -> Iterator[tuple[Subscription, list[Notification] | None]]:
        """Register a subscriber. Yields it with its backlog from the buffer, or None when the
        backlog must come from the store (`last_event_id` is not in the buffer)."""
        subscription = Subscription(accepts, asyncio.Queue(self._queue_size))
        backlog: list[Notification] | None = []
        if last_event_id is not None:
            backlog = self._after(last_event_id, accepts)
        # Registered in the same step as the buffer was read (no await between): no gap.
        self._subscribers.add(subscription)
        try:
            yield subscription, backlog
        finally:
            self._subscribers.discard(subscription)

    def _after(self, last_event_id: str, accepts: Accepts) -> list[Notification] | None:
        if last_event_id not in self._ids:
            return None
        found, after = False, []
        for notification in self._recent:
            if found and accepts(notification):
                after.append(notification)
            found = found or notification.id == last_event_id
        return after

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:  # the consumer reconnects by itself; keep reading
                log.warning("notification feed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for records in batch.values():
                for record in records:
                    self._deliver(record.value)

    def _deliver(self, raw: bytes | None) -> None:
        try:
            notification = decode(NOTIFICATIONS, raw).payload
        except SchemaError as exc:
            log.warning("unreadable notification ignored: %s", exc)
            return
        assert isinstance(notification, Notification)
        if len(self._recent) == self._recent.maxlen:
            self._ids.pop(self._recent[0].id, None)
        self._recent.append(notification)
        self._ids[notification.id] = None
        for subscription in list(self._subscribers):
            subscription.offer(notification)


def from_document(doc: dict[str, Any]) -> Notification | None:
    """A stored notification (`_id` = its id), or None when the document does not decode."""
    try:
        return Notification.model_validate({**doc, "id": doc["_id"]})
    except (ValueError, KeyError) as exc:
        log.warning("stored notification %s unreadable: %s", doc.get("_id"), exc)
        return None
