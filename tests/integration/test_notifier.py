"""The notifier against the real broker and FerretDB: machines going offline and back (a
simulated agent, and a storm of 100), a restart mid-storm, a user's task event, webhooks with a
retry and a dead letter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schemas.base import Model, utcnow
from schemas.codec import decode, encode, envelope_for
from schemas.heartbeat import AgentHeartbeat
from schemas.notifications import Notification, Severity
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import DEAD_LETTERS, HEARTBEATS, NOTIFICATIONS, TASK_EVENTS, TopicSpec
from services.agent.app import run as run_agent
from services.agent.settings import AgentSettings
from services.notifier.app import run as run_notifier
from services.notifier.settings import NotifierSettings, Webhook
from services.notifier.statelog import read_all as read_state
from tests.conftest import Bus
from tests.fixtures import Worker, running_worker
from tests.integration.test_enqueue_faults import read_all
from tests.support import ThreadedServer, eventually

INTERVAL_S = 0.5
GROUP_WAIT_S = 0.3
#: Offline is told within 3 missed intervals plus the group wait; this much more for the tick
#: and the notifier's publish on 2 shared cores (the bound is checked on the notification's own
#: time stamp, so MongoDB's write and the test's polling are not in it).
SLACK_S = 1.5


def notifier_settings(bus: Bus, **overrides: Any) -> NotifierSettings:
    fields: dict[str, Any] = {
        **bus.settings(),
        "instance": "notifier-test",
        "tick_s": 0.05,
        "group_wait_s": GROUP_WAIT_S,
        "group_max_wait_s": 3.0,
        "retry_attempts": 3,
        "retry_cap_s": 0.2,
        "webhook_attempts": 3,
        "webhook_retry_cap_s": 0.2,
    }
    return NotifierSettings(**{**fields, **overrides})


def notifier(settings: NotifierSettings) -> contextlib.AbstractAsyncContextManager[Worker]:
    return running_worker(run_notifier, settings)


async def quiet_for(seconds: float) -> None:
    """Proving that nothing more comes takes a span of time: this is that span."""
    await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def producer_for(bus: Bus) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish(
    producer: AIOKafkaProducer, bus: Bus, spec: TopicSpec, key: str, payload: Model, **env: Any
) -> None:
    value = encode(envelope_for(spec, payload, **env))
    await producer.send_and_wait(spec.named(bus.topic_prefix), value, key=key.encode())


async def beat(producer: AIOKafkaProducer, bus: Bus, machines: list[str]) -> None:
    """One heartbeat from each machine."""
    for machine in machines:
        hb = AgentHeartbeat(machine_id=machine, interval_s=INTERVAL_S)
        await publish(producer, bus, HEARTBEATS, machine, hb)


async def beat_at_once(producer: AIOKafkaProducer, bus: Bus, machines: list[str]) -> None:
    """One heartbeat from each machine, all stamped with the same time and sent in one batch:
    the machines then fall silent at the same instant, as in a real storm (a switch or a rack
    going down), however long the sends take."""
    at = utcnow()
    sent = []
    for machine in machines:
        hb = AgentHeartbeat(machine_id=machine, interval_s=INTERVAL_S)
        value = encode(envelope_for(HEARTBEATS, hb, created_at=at))
        topic = HEARTBEATS.named(bus.topic_prefix)
        sent.append(await producer.send(topic, value, key=machine.encode()))
    await asyncio.gather(*sent)


async def beat_until_known(
    producer: AIOKafkaProducer, bus: Bus, mongo_db: Any, machines: list[str]
) -> None:
    """Heartbeats every interval until the notifier has seen them all (its state topic says).

    The last round is the storm's start. Sent one by one, as `beat` does, the last heartbeats
    were spread over as long as 100 sends take, and so were the machines' offline alerts: on a
    loaded machine a pause of more than the group wait between two sends split the storm in
    two notifications (62 + 38 seen), which is the documented rule working (alerts more than
    `group_wait_s` apart are two groups), not a fault of the notifier. Stamped with one time,
    the 100 go offline on the same tick: one storm by that rule, whatever the machine's load.
    """
    settings = notifier_settings(bus)
    wanted = {f"machine:{m}" for m in machines}

    async def known() -> bool:
        await beat_at_once(producer, bus, machines)
        seen = {key for key, _ in await read_state(settings)}
        if wanted <= seen:
            return True
        await asyncio.sleep(INTERVAL_S)
        return False

    await eventually(known, timeout_s=30, what="the notifier to know every machine")


async def notes(mongo_db: Any, kind: str, status: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = (
        await mongo_db["notifications"].find({"kind": kind, "status": status}).to_list()
    )
    return docs


async def test_a_simulated_agent_that_stops_is_offline_once_then_back_once(
    bus: Bus, mongo_db: Any
) -> None:
    agent = AgentSettings(
        **bus.settings(), machine_id="sim-gb1", interval_s=INTERVAL_S, simulate=1, seed=1
    )
    async with notifier(notifier_settings(bus)):
        async with running_worker(run_agent, agent):

            async def known() -> bool:
                state = await read_state(notifier_settings(bus))
                return any(key == "machine:sim-gb1" for key, _ in state)

            await eventually(known, what="the notifier to hear the agent")
        stopped = utcnow()

        async def offline() -> list[dict[str, Any]]:
            return await notes(mongo_db, "machine_offline", "firing")

        [told] = await eventually(offline, what="the offline notification")
        # Timed by the notifier's own stamp (when it published the notification), not by when
        # this test's polling of MongoDB found it: the bound is on the notifier's decision, and
        # the store's write and the poll's latency on a loaded machine are no part of it.
        published = told["created_at"].replace(tzinfo=UTC)
        assert (published - stopped).total_seconds() <= 3 * INTERVAL_S + GROUP_WAIT_S + SLACK_S
        assert told["subject"] == "sim-gb1"
        assert told["fingerprint"] == "machine_offline:sim-gb1"
        await quiet_for(3 * INTERVAL_S + GROUP_WAIT_S)
        assert len(await offline()) == 1

        async with running_worker(run_agent, agent):

            async def back() -> list[dict[str, Any]]:
                return await notes(mongo_db, "machine_offline", "resolved")

            [resolved] = await eventually(back, what="the back-online notification")
            assert resolved["fingerprint"] == told["fingerprint"]
            await quiet_for(3 * INTERVAL_S + GROUP_WAIT_S)
            assert len(await back()) == 1
            assert len(await offline()) == 1


async def test_a_storm_is_one_notification_and_a_restart_does_not_tell_it_again(
    bus: Bus, mongo_db: Any
) -> None:
    machines = [f"storm-{i:03d}" for i in range(100)]
    settings = notifier_settings(bus)
    async with producer_for(bus) as producer:
        async with notifier(settings) as first:
            await beat_until_known(producer, bus, mongo_db, machines)

            async def storm() -> list[dict[str, Any]]:
                return await notes(mongo_db, "machine_offline", "firing")

            [told] = await eventually(storm, what="the storm's notification")
            assert sorted(told["subjects"]) == machines
            assert told["subject"] == "100 machines"
            await first.kill()  # as a crash: what is in hand is not committed
        async with notifier(settings):
            await quiet_for(3 * INTERVAL_S + GROUP_WAIT_S + SLACK_S)
            assert await storm() == [told]
            await beat_at_once(producer, bus, machines)

            async def back() -> list[dict[str, Any]]:
                return await notes(mongo_db, "machine_offline", "resolved")

            async def all_back() -> list[dict[str, Any]]:
                # each heartbeat's resolve is staged as the notifier handles it, so on a loaded
                # machine the 100 can be told in more than one group: wait for all of them
                # (a fixed 0.6 s once read 42 of 100), then check how they were grouped
                docs = await back()
                return docs if sum(len(d["subjects"]) or 1 for d in docs) >= 100 else []

            resolved = await eventually(all_back, what="the storm's end for all 100 machines")
            await quiet_for(GROUP_WAIT_S * 2)  # nothing told twice after
            resolved = await back()
            assert sum(len(d["subjects"]) or 1 for d in resolved) == 100
            assert len(resolved) <= 2  # one group (two if the 100 heartbeats straddled a tick)


class Receiver:
    """A webhook receiver over real HTTP: `/hook/<name>`, each answering its scripted statuses
    in turn (200 once the script is used up)."""

    def __init__(self, scripts: dict[str, list[int]]) -> None:
        self.scripts = scripts
        self.got: list[tuple[str, int, dict[str, Any]]] = []

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            name = request.path_params["name"]
            script = self.scripts.get(name, [])
            status = script.pop(0) if len(script) > 1 else (script[0] if script else 200)
            self.got.append((name, status, await request.json()))
            return JSONResponse({"ok": status < 300}, status_code=status)

        return Starlette(routes=[Route("/hook/{name}", hook, methods=["POST"])])

    def answers(self, name: str) -> list[int]:
        return [status for who, status, _ in self.got if who == name]


async def test_a_users_task_event_is_stored_for_that_user_and_sent_to_webhooks(
    bus: Bus, mongo_db: Any
) -> None:
    receiver = Receiver({"flaky": [503, 200], "refuses": [400]})
    server = await asyncio.to_thread(ThreadedServer(receiver.app(), "webhooks").start)
    hooks = (
        Webhook(url=f"{server.url}/hook/flaky", name="flaky"),
        Webhook(url=f"{server.url}/hook/refuses", name="refuses", kinds=("task_failed",)),
        Webhook(url=f"{server.url}/hook/bob", name="bob", users=("bob",)),
    )
    event = TaskEvent(
        kind=TaskEventKind.FAILED,
        request_id="a1" * 16,
        user="alice",
        task_id="3b1f0e3c",
        queue_name="gpu-a100",
        message="The training run failed: CUDA out of memory.",
    )
    try:
        async with producer_for(bus) as producer, notifier(notifier_settings(bus, webhooks=hooks)):
            for _ in range(2):  # delivered twice: told once, stored once
                await publish(producer, bus, TASK_EVENTS, event.request_id, event, user="alice")

            async def stored() -> list[dict[str, Any]]:
                return await notes(mongo_db, "task_failed", "event")

            [doc] = await eventually(stored, what="alice's notification in MongoDB")
            assert doc["user"] == "alice"
            assert doc["subject"] == event.request_id
            assert "CUDA out of memory" in doc["message"]

            async def flaky_delivered() -> bool:
                return receiver.answers("flaky")[:2] == [503, 200]

            await eventually(flaky_delivered, what="the flaky webhook's retry")
            [(_, _, body)] = [g for g in receiver.got if g[0] == "flaky"][:1]
            assert body["id"] == doc["_id"]
            assert body["user"] == "alice"

            letters = [
                decode(DEAD_LETTERS, raw).payload
                for raw in await read_all(bus, DEAD_LETTERS.name, 1)
            ]
            assert {(d.consumer_group, d.error_class) for d in letters} == {
                ("mlbus-notifier-webhook-refuses", "WebhookRejected")
            }
            assert "HTTP 400" in letters[0].reason
            # told once though delivered twice, and no retry of a 400
            assert receiver.answers("refuses") == [400]
            assert receiver.answers("bob") == []
            assert await stored() == [doc]
    finally:
        await asyncio.to_thread(server.stop)


async def test_every_notification_on_the_topic_is_stored_once(bus: Bus, mongo_db: Any) -> None:
    from_router = Notification(
        kind="replica_down",
        severity=Severity.WARNING,
        status="firing",
        subject="m1/replica-0",
        fingerprint="replica_down:m1/replica-0",
        message="Replica 0 of serving machine m1 failed repeatedly.",
    )
    async with producer_for(bus) as producer, notifier(notifier_settings(bus)):
        for _ in range(3):
            await publish(producer, bus, NOTIFICATIONS, from_router.subject, from_router)

        async def stored() -> list[dict[str, Any]]:
            return await notes(mongo_db, "replica_down", "firing")

        [doc] = await eventually(stored, what="the router's notification in MongoDB")
        assert doc["_id"] == from_router.id
        assert doc["user"] is None
        await quiet_for(0.5)
        assert len(await stored()) == 1
        indexes = await mongo_db["notifications"].index_information()
        assert any(spec["key"] == [("user", 1), ("_id", -1)] for spec in indexes.values())
