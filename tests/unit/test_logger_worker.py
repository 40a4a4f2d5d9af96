"""The whole logger worker (services/logger/app.py's `worker`: two subscriptions, one fold) run
on the in-memory broker with the view store as a double: one fact folds once, whichever topic
brings it and however often; what does not decode is dead-lettered and the fold goes on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from runtime.membroker import MemBroker
from schemas.logs import RequestLogged
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import LOGS, TASK_EVENTS
from services.logger.app import worker
from services.logger.fold import Writes
from services.logger.settings import LoggerSettings

RID = "5f0c8a9e2b7d4c1f9a3e6b8d0c2f4a61"


class Views:
    """The view store as the fold sees it: claims by key, raw logs, and every write applied."""

    buckets = True  # the hand-made log index too, as on FerretDB

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.raws: dict[tuple[str, str], dict[str, Any]] = {}
        self.incs: dict[tuple[str, str, str], float] = {}

    async def claim(self, keys: Sequence[str]) -> set[str]:
        return {k for k in keys if k not in self.done}

    async def mark_done(self, keys: Iterable[str]) -> None:
        self.done |= set(keys)

    async def insert_raw(self, docs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        stored = {}
        for doc in docs:
            if ("ondemand", doc["_id"]) not in self.raws:
                self.raws[("ondemand", doc["_id"])] = stored[doc["_id"]] = doc
        return stored

    async def raw(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        return {w: self.raws[w] for w in wanted if w in self.raws}

    async def apply(self, writes: Writes, *, fresh: bool = False) -> None:
        for (collection, key), update in writes.updates.items():
            for name, n in update.incs.items():
                slot = (collection, key, name)
                self.incs[slot] = self.incs.get(slot, 0) + n


def settings() -> LoggerSettings:
    return LoggerSettings(topic_prefix="", metrics_port=0, retry_attempts=2, retry_cap_s=0.01)


async def test_queued_told_twice_on_two_topics_folds_once_and_a_bad_message_is_dead_lettered() -> (
    None
):
    views, broker = Views(), MemBroker()
    logged = RequestLogged(
        request_id=RID, path="enqueue", status="queued", user="alice", target="t1"
    )
    event = TaskEvent(
        kind=TaskEventKind.ENQUEUED,
        request_id=RID,
        user="alice",
        task_id="t1",
        queue_name="gpu",
    )
    async with broker.running(worker(settings(), views)):  # type: ignore[arg-type]
        await broker.publish(LOGS, logged, id=RID, user="alice")
        await broker.publish(TASK_EVENTS, event, id=RID, user="alice")
        await broker.publish_raw(LOGS, b"not json", RID.encode())
        await broker.publish(LOGS, logged, id=RID, user="alice")  # a redelivery
        await broker.settled()
    assert views.done == {f"{RID}/queued"}
    # one fact, so every read model counted the request once (whatever its counters' names)
    assert views.incs
    assert all(n == 1 for n in views.incs.values()), views.incs
    [letter] = broker.dead_letters()
    assert (letter.key, letter.error_class) == (RID, "SchemaError")
    assert letter.consumer_group == f"{settings().group}-logs"
