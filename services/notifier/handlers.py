"""One handler per consumed topic: heartbeats and queue state feed the rules, task events become
a user's notifications, and every notification is stored and sent to the webhooks."""

from __future__ import annotations

import logging
from datetime import timedelta

from schemas.base import Envelope, utcnow
from schemas.heartbeat import AgentHeartbeat
from schemas.notifications import Notification
from schemas.resources import QueueState
from schemas.tasks import TaskEvent
from services.notifier.bus import NotificationPublisher
from services.notifier.engine import Engine
from services.notifier.settings import Webhook
from services.notifier.store import NotificationStore
from services.notifier.tasks import task_notification
from services.notifier.webhooks import WebhookClient

log = logging.getLogger(__name__)


class HeartbeatHandler:
    """mlbus.heartbeats → machine rules."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def __call__(self, env: Envelope[AgentHeartbeat]) -> None:
        await self._engine.heartbeat(env.payload, env.created_at)


class QueueStateHandler:
    """mlbus.state.queues → queue rules."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def __call__(self, env: Envelope[QueueState]) -> None:
        await self._engine.queue(env.payload)


class TaskEventHandler:
    """mlbus.events.task → a notification for the task's user."""

    def __init__(self, publish: NotificationPublisher) -> None:
        self._publish = publish

    async def __call__(self, env: Envelope[TaskEvent]) -> None:
        notification = task_notification(env.payload)
        if notification is not None:
            await self._publish(notification)


class StoreHandler:
    """mlbus.notifications → MongoDB `notifications` (a redelivery is kept once)."""

    def __init__(self, store: NotificationStore) -> None:
        self._store = store

    async def __call__(self, env: Envelope[Notification]) -> None:
        await self._store.save(env.payload, env.created_at)


class WebhookHandler:
    """mlbus.notifications → one webhook, for the notifications its filters let through.

    Notifications older than `max_age` are skipped: a webhook added today is not sent the
    topic's history."""

    def __init__(self, webhook: Webhook, client: WebhookClient, max_age_s: float) -> None:
        self._webhook, self._client = webhook, client
        self._max_age = timedelta(seconds=max_age_s)

    async def __call__(self, env: Envelope[Notification]) -> None:
        if not self._webhook.wants(env.payload):
            return
        if utcnow() - env.created_at > self._max_age:
            log.debug("notification %s too old for webhook %s", env.id, self._webhook.label)
            return
        await self._client.post(env.payload)
