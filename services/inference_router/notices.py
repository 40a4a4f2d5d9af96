"""Breaker changes as operator notifications on `mlbus.notifications`.

The subject names the machine by its opaque id and the replica by its index: a replica's URL is
an internal address and never appears in a notification.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from runtime import metrics
from schemas.base import utcnow
from schemas.codec import encode, envelope_for
from schemas.notifications import AlertStatus, Notification, Severity
from schemas.topics import NOTIFICATIONS
from services.inference_router.replicas import Replica

log = logging.getLogger(__name__)


def breaker_notice(
    machine_id: str, replica: Replica, opened: bool, cooldown_s: float
) -> Notification:
    """The notification for one replica taken out of, or back into, rotation."""
    subject = f"{machine_id}/replica-{replica.index}"
    if opened:
        return Notification(
            kind="replica_down",
            severity=Severity.WARNING,
            status=AlertStatus.FIRING,
            subject=subject,
            fingerprint=f"replica_down:{subject}",
            message=(
                f"Replica {replica.index} of serving machine {machine_id} failed repeatedly; "
                f"it is out of rotation for {cooldown_s:g} s before it is tried again."
            ),
        )
    return Notification(
        kind="replica_up",
        severity=Severity.INFO,
        status=AlertStatus.RESOLVED,
        subject=subject,
        fingerprint=f"replica_down:{subject}",
        resolved_at=utcnow(),
        message=f"Replica {replica.index} of serving machine {machine_id} answers again.",
    )


class Notifier:
    """Publishes breaker changes without holding up the call that caused them."""

    def __init__(self, producer: AIOKafkaProducer, prefix: str, cooldown_s: float) -> None:
        self._producer, self._cooldown = producer, cooldown_s
        self._topic = NOTIFICATIONS.named(prefix)
        self._tasks: set[asyncio.Task[None]] = set()

    def breaker_changed(self, machine_id: str, replica: Replica, opened: bool) -> None:
        """Listener for ReplicaPool: publish in the background."""
        notice = breaker_notice(machine_id, replica, opened, self._cooldown)
        metrics.BREAKER_OPEN.labels(machine_id, str(replica.index)).set(1 if opened else 0)
        log.warning("%s: %s", notice.kind, notice.message)
        task = asyncio.get_running_loop().create_task(self._publish(notice))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, notice: Notification) -> None:
        try:
            await self._producer.send_and_wait(
                self._topic,
                encode(envelope_for(NOTIFICATIONS, notice)),
                key=notice.subject.encode(),
            )
        except KafkaError as exc:
            log.warning("could not publish %s notification: %s", notice.kind, exc)

    async def drain(self) -> None:
        """Wait for notifications still being published (before the producer stops)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
