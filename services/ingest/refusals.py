"""Repeated refusals of one address become a notification for admins and operators."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from runtime.http import ApiError
from schemas.codec import envelope_for
from schemas.notifications import Notification, Severity
from schemas.topics import NOTIFICATIONS
from services.ingest.access import Address, RefusalCounter
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


def refusal_reporter(
    app: FastAPI, counter: RefusalCounter, settings: IngestSettings
) -> Callable[[Address | None, str], Awaitable[None]]:
    """The NetworkGate's `on_refused`: log every refusal, notify once per address and window."""

    async def on_refused(address: Address | None, path: str) -> None:
        shown = str(address) if address is not None else "unknown"
        log.warning("refused a request from %s to %s: outside the allowed networks", shown, path)
        ingest = getattr(app.state, "ingest", None)
        if ingest is None or not counter.refused(shown):
            return
        window = f"{settings.refusal_alert_window_s:g} s"
        notice = Notification(
            kind="access_refused",
            severity=Severity.WARNING,
            subject=shown,
            message=(
                f"{counter.threshold} or more requests from {shown} were refused in {window} "
                f"(outside the allowed networks; the last one to {path})."
            ),
        )
        try:
            await ingest.enqueue_bus.publish(NOTIFICATIONS, envelope_for(NOTIFICATIONS, notice))
        except ApiError:  # Kafka down: the log line above still says it
            log.warning("could not publish the access_refused notification for %s", shown)

    return on_refused
