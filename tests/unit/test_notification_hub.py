"""The stream hub's buffer, resume and back-pressure rules, without Kafka."""

from __future__ import annotations

from runtime.settings import BusSettings
from schemas.codec import encode, envelope_for
from schemas.notifications import Notification, Severity
from schemas.topics import NOTIFICATIONS
from services.ingest.stream import NotificationHub, from_document


def note(user: str | None = "alice") -> Notification:
    return Notification(kind="k", severity=Severity.INFO, subject="s", message="m", user=user)


def feed(hub: NotificationHub, *notes: Notification) -> None:
    for n in notes:
        hub._deliver(encode(envelope_for(NOTIFICATIONS, n)))


def hub(buffer: int = 10, queue: int = 10) -> NotificationHub:
    return NotificationHub(BusSettings(), buffer, queue)


def test_resume_from_the_buffer_gives_what_came_after_in_arrival_order() -> None:
    h = hub()
    a, b, c, d = note(), note("bob"), note(), note()
    feed(h, a, b, c, d)
    with h.subscribe(lambda n: n.user == "alice", a.id) as (_, backlog):
        assert backlog == [c, d]


def test_an_id_that_left_the_buffer_sends_the_reader_to_the_store() -> None:
    h = hub(buffer=2)
    first, *rest = [note() for _ in range(3)]
    feed(h, first, *rest)
    with h.subscribe(lambda _: True, first.id) as (_, backlog):
        assert backlog is None
    with h.subscribe(lambda _: True, None) as (_, backlog):
        assert backlog == []


def test_live_notifications_reach_matching_subscribers_only() -> None:
    h = hub()
    with h.subscribe(lambda n: n.user == "alice", None) as (alice, _):
        feed(h, note("bob"), mine := note("alice"))
        assert alice.queue.get_nowait() == mine
        assert alice.queue.empty()
    feed(h, note("alice"))  # unsubscribed: nothing queued any more
    assert alice.queue.empty()


def test_a_subscriber_that_falls_behind_is_ended_not_allowed_to_grow() -> None:
    h = hub(queue=3)
    with h.subscribe(lambda _: True, None) as (slow, _):
        feed(h, *[note() for _ in range(10)])
        assert slow.ended
        items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        assert items[-1] is None
        assert len(items) == 3


def test_closing_streams_ends_every_subscriber() -> None:
    h = hub()
    with (
        h.subscribe(lambda _: True, None) as (one, _),
        h.subscribe(lambda _: True, None) as (two, _),
    ):
        h.close_streams()
        assert one.queue.get_nowait() is None
        assert two.queue.get_nowait() is None


def test_garbage_on_the_topic_is_skipped() -> None:
    h = hub()
    h._deliver(b"not json")
    h._deliver(None)
    feed(h, ok := note())
    with h.subscribe(lambda _: True, ok.id) as (_, backlog):
        assert backlog == []


def test_stored_documents_decode_and_broken_ones_are_skipped() -> None:
    n = note()
    assert from_document({"_id": n.id, **n.model_dump(exclude={"id"})}) == n
    assert from_document({"_id": "x"}) is None
