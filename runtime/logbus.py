"""RequestLogged on mlbus.logs, for the logger's read models; the enqueuer and router publish it.

Published after the log write is durable and without waiting for the broker: the log in MongoDB
is the record, the message only keeps the read models current, so a failure to publish is
logged and counted, never fatal (the logger also folds the task events, and an admin can rebuild
the read models from the logs).
"""

from __future__ import annotations

import asyncio
import logging

from runtime import metrics
from runtime.worker import Publisher
from schemas.logs import RequestLogged

log = logging.getLogger(__name__)


class LogBus:
    """Publishes RequestLogged, fire and forget."""

    def __init__(self, logs: Publisher[RequestLogged], service: str) -> None:
        self._logs, self._service = logs, service

    async def logged(self, entry: RequestLogged) -> None:
        """Hand the message to the producer; its delivery is checked in the background."""
        try:
            sent = await self._logs.hand(entry, id=entry.request_id, user=entry.user)
        except Exception as exc:
            self._failed(entry, exc)
            return
        sent.add_done_callback(lambda f: self._delivered(entry, f))

    def _delivered(self, entry: RequestLogged, future: asyncio.Future[object]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._failed(entry, future.exception())

    def _failed(self, entry: RequestLogged, exc: BaseException | None) -> None:
        metrics.LOG_PUBLISH_FAILURES.labels(self._service).inc()
        log.warning("RequestLogged %s/%s not published: %s", entry.path, entry.status, exc)
