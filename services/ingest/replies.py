"""Waiting for inference replies on this ingest instance's own reply topic.

The topic (`mlbus.replies.<instance>`, one partition) is created at start-up and read from its
end, without a consumer group, by librdkafka (`runtime.rdkafka.RdTail`: this is the latency
path): replies are only for requests this process is waiting on.
A waiter is registered *before* the request is published, so no reply can arrive unseen; a reply
that arrives after its caller gave up is logged, not lost silently.
"""

from __future__ import annotations

import asyncio
import logging

from runtime.kafka import ensure_topics
from runtime.rdkafka import RdTail
from runtime.settings import BusSettings
from schemas.codec import SchemaError, decode
from schemas.inference import InferenceReplied
from schemas.topics import TopicSpec, reply_topic

log = logging.getLogger(__name__)


class ReplyWaiter:
    """Futures by request id, completed by the reply consumer."""

    def __init__(self, settings: BusSettings) -> None:
        self._settings = settings
        self.spec: TopicSpec = reply_topic(settings.instance)
        self.topic = self.spec.named(settings.topic_prefix)
        self._waiting: dict[str, asyncio.Future[InferenceReplied]] = {}
        self._tail: RdTail | None = None

    async def start(self) -> None:
        """Create the reply topic, position at its end, start reading."""
        await ensure_topics(self._settings, [self.spec])
        tail = RdTail(self._settings, self.topic, self._deliver)
        await tail.start()
        self._tail = tail

    async def stop(self) -> None:
        """Stop reading; callers still waiting get their timeouts."""
        if self._tail is not None:
            await self._tail.stop()

    def running(self) -> bool:
        """True while the reply consumer runs."""
        return self._tail is not None and self._tail.running()

    def expect(self, request_id: str) -> asyncio.Future[InferenceReplied]:
        """Register a waiter; call before publishing the request."""
        future: asyncio.Future[InferenceReplied] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        return future

    def forget(self, request_id: str) -> None:
        """The caller stopped waiting."""
        self._waiting.pop(request_id, None)

    def _deliver(self, raw: bytes | None) -> None:
        try:
            envelope = decode(self.spec, raw)
        except SchemaError as exc:
            log.warning("unreadable reply ignored: %s", exc)
            return
        future = self._waiting.pop(envelope.id, None)
        if future is None or future.done():
            log.warning(
                "reply for %s arrived after its caller gave up (http %s)",
                envelope.id,
                envelope.payload.http_status,
            )
            return
        future.set_result(envelope.payload)
