"""The notifier's HTTP adapter for webhooks: one JSON POST per notification, explicit timeouts,
and the answer translated into the error tree (the consumer loop retries and dead-letters)."""

from __future__ import annotations

import contextlib

import httpx

from runtime import metrics
from schemas.notifications import Notification
from services.notifier.errors import WebhookRejected, WebhookUnavailable
from services.notifier.settings import NotifierSettings, Webhook

#: Answers worth another try: the receiver is busy or timed out, not saying no.
RETRIABLE_STATUS = frozenset({408, 429})


def open_client(stack: contextlib.AsyncExitStack, settings: NotifierSettings) -> httpx.AsyncClient:
    """One pooled client per webhook (a slow one cannot take another's connections); the stack
    closes it."""
    timeout = httpx.Timeout(settings.webhook_timeout_s, connect=settings.webhook_connect_timeout_s)
    limits = httpx.Limits(max_connections=settings.webhook_concurrency)
    client = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
    stack.push_async_callback(client.aclose)
    return client


class WebhookClient:
    """POSTs notifications to one webhook."""

    def __init__(self, webhook: Webhook, client: httpx.AsyncClient) -> None:
        self._webhook, self._client = webhook, client

    async def post(self, notification: Notification) -> None:
        """Deliver one notification; 2xx is success, anything else raises."""
        label = self._webhook.label
        try:
            response = await self._client.post(
                self._webhook.url,
                content=notification.model_dump_json(),
                headers={
                    "content-type": "application/json",
                    "x-mlbus-notification-id": notification.id,
                },
            )
        except httpx.HTTPError as exc:  # timeouts, refused or dropped connections
            metrics.WEBHOOK_DELIVERIES.labels(label, "unavailable").inc()
            raise WebhookUnavailable(f"{label}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            metrics.WEBHOOK_DELIVERIES.labels(label, "delivered").inc()
            return
        detail = f"{label}: HTTP {status}: {response.text[:200]}"
        if status >= 500 or status in RETRIABLE_STATUS:
            metrics.WEBHOOK_DELIVERIES.labels(label, "unavailable").inc()
            raise WebhookUnavailable(detail)
        metrics.WEBHOOK_DELIVERIES.labels(label, "rejected").inc()
        raise WebhookRejected(detail)
