"""The live notification stream over real HTTP and Kafka: who sees what, and resuming by the
last event id, from the process's buffer and from MongoDB."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from schemas.codec import encode, envelope_for
from schemas.notifications import AlertStatus, Notification, Severity
from schemas.topics import NOTIFICATIONS
from tests.conftest import Bus
from tests.support import Issuer

STREAM = "/v1/notifications/stream"


def note(user: str | None, subject: str, kind: str = "task_failed") -> Notification:
    return Notification(
        kind=kind,
        severity=Severity.WARNING,
        status=AlertStatus.EVENT if user else AlertStatus.FIRING,
        subject=subject,
        message=f"{kind} on {subject}",
        user=user,
    )


@contextlib.asynccontextmanager
async def publisher(bus: Bus) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, linger_ms=0)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish(producer: AIOKafkaProducer, bus: Bus, *notes: Notification) -> None:
    for n in notes:
        await producer.send_and_wait(
            NOTIFICATIONS.named(bus.topic_prefix),
            encode(envelope_for(NOTIFICATIONS, n)),
            key=n.subject.encode(),
        )


class Reader:
    """Collects a stream's events in the background."""

    def __init__(self, client: httpx.AsyncClient, token: str, **headers: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.open = asyncio.Event()
        self._headers = {"Authorization": f"Bearer {token}", **headers}
        self._client = client
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.open.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        async with self._client.stream("GET", STREAM, headers=self._headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            event_id = None
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    self.open.set()
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
                    assert event_id is not None
                    self.ids.append(event_id)

    async def until(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.events) < count:
            assert asyncio.get_running_loop().time() < deadline, self.events
            await asyncio.sleep(0.02)
        return self.events


async def test_users_see_their_own_and_operators_see_all(
    ingest: httpx.AsyncClient, issuer: Issuer, bus: Bus
) -> None:
    alice = Reader(ingest, issuer.token("alice"))
    bob = Reader(ingest, issuer.token("bob"))
    operator = Reader(ingest, issuer.token("carol", roles=["AreaManager"]))
    async with alice, bob, operator, publisher(bus) as producer:
        mine, theirs, ops = note("alice", "r1"), note("bob", "r2"), note(None, "gpu-box-01")
        await publish(producer, bus, mine, theirs, ops)
        # Across partitions, arrival order may differ from publish order.
        assert {e["id"] for e in await operator.until(3)} == {mine.id, theirs.id, ops.id}
        assert [e["id"] for e in await alice.until(1)] == [mine.id]
        assert [e["id"] for e in await bob.until(1)] == [theirs.id]
        await asyncio.sleep(0.3)  # nothing more arrives for the users
        assert len(alice.events) == 1
        assert len(bob.events) == 1
        assert alice.ids == [mine.id]  # the event id is the notification id
        assert alice.events[0]["message"] == "task_failed on r1"


async def test_a_reconnecting_client_gets_what_it_missed_from_the_buffer(
    ingest: httpx.AsyncClient, issuer: Issuer, bus: Bus
) -> None:
    token = issuer.token("alice")
    async with publisher(bus) as producer:
        async with Reader(ingest, token) as first:
            seen = note("alice", "r1")
            await publish(producer, bus, seen)
            await first.until(1)
        missed = [note("alice", f"r{i}") for i in range(2, 5)]
        async with Reader(ingest, issuer.token("root", roles=["RootAdmin"])) as watcher:
            await publish(producer, bus, *missed, note("bob", "r9"))
            await watcher.until(4)  # all are in ingest's buffer now
        async with Reader(ingest, token, **{"Last-Event-ID": seen.id}) as resumed:
            later = note("alice", "r5")
            await publish(producer, bus, later)
            events = await resumed.until(4)
    assert {e["id"] for e in events} == {n.id for n in [*missed, later]}
    assert events[-1]["id"] == later.id
    assert len(events) == 4


async def test_resume_from_an_id_the_process_never_saw_reads_mongodb(
    ingest: httpx.AsyncClient, issuer: Issuer, bus: Bus, mongo_db: Any
) -> None:
    old = [note("alice", f"r{i}") for i in range(3)] + [note("bob", "r3")]
    await mongo_db["notifications"].insert_many(
        [{"_id": n.id, **n.model_dump(exclude={"id"})} for n in old]
    )
    async with (
        publisher(bus) as producer,
        Reader(ingest, issuer.token("alice"), **{"Last-Event-ID": old[0].id}) as resumed,
    ):
        live = note("alice", "r4")
        await publish(producer, bus, live)
        events = await resumed.until(3)
    assert [e["id"] for e in events] == [old[1].id, old[2].id, live.id]


async def test_history_pages_newest_first_and_only_your_own(
    ingest: httpx.AsyncClient, issuer: Issuer, mongo_db: Any
) -> None:
    notes = [note("alice", f"r{i}") for i in range(5)] + [note("bob", "rb")]
    await mongo_db["notifications"].insert_many(
        [{"_id": n.id, **n.model_dump(exclude={"id"})} for n in notes]
    )
    auth = {"Authorization": f"Bearer {issuer.token('alice')}"}
    first = (await ingest.get("/v1/notifications?limit=3", headers=auth)).json()
    assert [i["subject"] for i in first["items"]] == ["r4", "r3", "r2"]
    rest = await ingest.get(
        f"/v1/notifications?limit=3&before={first['next_before']}", headers=auth
    )
    assert [i["subject"] for i in rest.json()["items"]] == ["r1", "r0"]
    assert rest.json()["next_before"] is None
    bad = await ingest.get(f"{STREAM}?after=nope", headers=auth)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_request"
    anonymous = await ingest.get(STREAM)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
