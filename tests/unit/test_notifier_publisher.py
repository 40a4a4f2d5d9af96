"""The notifier tells a notification once: a task event delivered twice (the monitor publishes
its events at least once; two-of-everything saw one `task_completed` told twice after its
monitor copy was killed) makes one notification, and its id is published once."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.base import Envelope
from schemas.codec import envelope_for
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import TASK_EVENTS
from services.notifier import bus
from services.notifier.bus import NotificationPublisher
from services.notifier.handlers import TaskEventHandler


class Sent:
    """The notifications topic's publisher, as the notifier sees it."""

    topic = "mlbus.notifications"

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def send(self, payload: Any, **fields: Any) -> None:
        self.ids.append(fields["id"])


def completed(request_id: str) -> Envelope[TaskEvent]:
    event = TaskEvent(kind=TaskEventKind.COMPLETED, request_id=request_id, task_id="t1", user="u")
    envelope: Envelope[TaskEvent] = envelope_for(TASK_EVENTS, event, id=request_id * 8)
    return envelope


async def test_a_task_event_delivered_twice_is_told_once() -> None:
    sent = Sent()
    handler = TaskEventHandler(NotificationPublisher(sent))  # type: ignore[arg-type]
    twice = completed("r1")
    await handler(twice)
    await handler(twice)  # the monitor's outbox sent it again
    await handler(completed("r2"))
    assert len(sent.ids) == 2
    assert len(set(sent.ids)) == 2


async def test_ids_told_before_a_takeover_are_not_told_again_and_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bus, "REMEMBERED", 3)
    sent = Sent()
    first = completed("r0")
    handler = TaskEventHandler(NotificationPublisher(sent, told=set()))  # type: ignore[arg-type]
    for n in range(5):
        await handler(completed(f"r{n}"))
    await handler(first)  # forgotten: only the last REMEMBERED are kept
    assert len(sent.ids) == 6
    again = Sent()
    told = NotificationPublisher(again, told=set(sent.ids))  # type: ignore[arg-type]
    await TaskEventHandler(told)(completed("r4"))
    assert again.ids == []
