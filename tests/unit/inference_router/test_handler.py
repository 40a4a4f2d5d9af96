"""Outcome → reply mapping and deadline handling, with httpx.MockTransport as the replicas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from schemas.base import Envelope, utcnow
from schemas.codec import decode
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.logs import RequestLogged
from schemas.topics import LOGS, REPLY_TEMPLATE
from services.inference_router.errors import BusUnavailable
from services.inference_router.handlers import InferenceHandler
from services.inference_router.model import ModelClient
from services.inference_router.routes import RouteTable
from services.inference_router.settings import InferenceRouterSettings
from services.inference_router.store import Machine, Mapping, MappingStore, OnDemandLogs

URLS = ("http://r0/serve", "http://r1/serve")
Reply = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeMappings(MappingStore):
    def __init__(self, timeout_s: float = 30.0) -> None:
        self.machines = {"m1": Machine("m1", "serving-task-1", URLS)}
        self.mappings = {"m1/parking": Mapping("m1", "parking", timeout_s)}

    async def all_machines(self) -> dict[str, Machine]:
        return dict(self.machines)

    async def all_mappings(self) -> dict[str, Mapping]:
        return dict(self.mappings)

    async def machine(self, machine_id: str) -> Machine | None:
        return self.machines.get(machine_id)

    async def mapping(self, machine_id: str, endpoint: str) -> Mapping | None:
        return self.mappings.get(f"{machine_id}/{endpoint}")


class FakeLogs(OnDemandLogs):
    def __init__(self) -> None:
        self.logged_elsewhere: set[str] = set()
        self.lookups: list[str] = []

    async def answered(self, request_id: str) -> bool:
        self.lookups.append(request_id)
        return request_id in self.logged_elsewhere


LOGS_TOPIC = LOGS.named("t.")


class FakeProducer:
    """The router's one producer: replies, and the calls' logs (`logged`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.logged: list[RequestLogged] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if topic == LOGS_TOPIC:
            self.logged.append(decode(LOGS, value).payload)
        else:
            self.sent.append((topic, value, key))

    def replies(self) -> list[InferenceReplied]:
        return [decode(REPLY_TEMPLATE, value).payload for _, value, _ in self.sent]


class Rig:
    def __init__(
        self, reply: Reply, timeout_s: float = 30.0, producer: FakeProducer | None = None
    ) -> None:
        self.calls: list[httpx.Request] = []

        async def handle(request: httpx.Request) -> httpx.Response:
            self.calls.append(request)
            return await reply(request)

        self.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
        self.producer, self.logs = producer or FakeProducer(), FakeLogs()
        settings = InferenceRouterSettings(breaker_failures=2)
        self.routes = RouteTable(FakeMappings(timeout_s), settings)
        self.handler = InferenceHandler(
            self.routes,
            ModelClient(self.http, 1.0),
            self.logs,
            self.producer,
            topic_prefix="t.",
        )

    async def send(self, env: Envelope[InferenceRequested]) -> InferenceReplied:
        await self.handler(env)
        return self.producer.replies()[-1]


def request(
    *, endpoint: str = "parking", version: str | None = None, deadline_s: float = 10.0
) -> Envelope[InferenceRequested]:
    payload = InferenceRequested(
        machine_id="m1",
        endpoint=endpoint,
        version=version,
        input={"hour": 9},
        reply_to="t.mlbus.replies.i1",
        deadline=utcnow() + timedelta(seconds=deadline_s),
    )
    return Envelope[InferenceRequested](
        type="InferenceRequested", schema_version=1, payload=payload, user="alice"
    )


def answer(status: int, body: Any) -> Reply:
    async def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return reply


async def test_a_2xx_answer_is_the_output_and_the_call_carries_the_request_id() -> None:
    rig = Rig(answer(200, {"free_slots": 12}))
    env = request(version="2")
    reply = await rig.send(env)
    assert reply.ok
    assert reply.http_status == 200
    assert reply.output == {"free_slots": 12}
    assert reply.model_ms is not None
    call = rig.calls[0]
    assert str(call.url) in {f"{u}/parking/2" for u in URLS}
    assert call.headers["x-request-id"] == env.id
    assert json.loads(call.content) == {"hour": 9}
    topic, value, key = rig.producer.sent[0]
    assert (topic, key) == ("t.mlbus.replies.i1", env.id.encode())
    assert decode(REPLY_TEMPLATE, value).id == env.id
    logged = rig.producer.logged[0]
    assert (logged.request_id, logged.status, logged.path) == (env.id, "ok", "ondemand")
    assert logged.record is not None
    assert logged.record.serving_task_id == "serving-task-1"
    assert (logged.record.http_status, logged.record.machine_id) == (200, "m1")


async def test_a_4xx_answer_keeps_its_status_and_the_models_detail() -> None:
    rig = Rig(answer(422, {"detail": "feature 'hour' must be an integer in 0..23, got 99"}))
    reply = await rig.send(request())
    assert (reply.ok, reply.http_status, reply.error_code) == (False, 422, "model_rejected")
    assert reply.message == "feature 'hour' must be an integer in 0..23, got 99"
    assert rig.producer.logged[0].status == "model_error"


async def test_a_5xx_answer_is_502_and_not_retried() -> None:
    rig = Rig(answer(500, {"detail": "boom"}))
    reply = await rig.send(request())
    assert (reply.http_status, reply.error_code) == (502, "model_failed")
    assert "boom" not in (reply.message or "")
    assert len(rig.calls) == 1


async def test_a_refused_connection_is_tried_once_on_another_replica() -> None:
    async def first_refuses(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r0":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": 1})

    rig = Rig(first_refuses)
    replies = [await rig.send(request()) for _ in range(4)]
    assert all(r.ok for r in replies)
    assert rig.routes.pools["m1"].replicas[0].breaker.state == "open"  # 2 failures in a row


async def test_refused_everywhere_is_502() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    rig = Rig(refuse)
    reply = await rig.send(request())
    assert (reply.http_status, reply.error_code) == (502, "model_failed")
    assert len(rig.calls) == 2


async def test_a_connection_lost_after_sending_is_502_and_never_retried() -> None:
    async def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    rig = Rig(drop)
    reply = await rig.send(request())
    assert (reply.http_status, reply.error_code) == (502, "model_failed")
    assert len(rig.calls) == 1


async def test_no_answer_within_the_endpoint_timeout_is_504() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200, json={})

    rig = Rig(hang, timeout_s=0.2)
    async with asyncio.timeout(60):  # the model hangs for an hour: the 0.2 s timeout ends it
        reply = await rig.send(request())
    assert (reply.http_status, reply.error_code) == (504, "model_timeout")
    assert rig.producer.logged[0].status == "timeout"


async def test_the_deadline_caps_the_call_when_it_is_nearer() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200, json={})

    rig = Rig(hang, timeout_s=3600)
    async with asyncio.timeout(60):  # neither the model nor its timeout ends it: the deadline
        reply = await rig.send(request(deadline_s=0.3))
    assert reply.error_code == "model_timeout"


async def test_an_expired_request_is_not_sent() -> None:
    rig = Rig(answer(200, {}))
    reply = await rig.send(request(deadline_s=-1))
    assert (reply.http_status, reply.error_code) == (504, "expired")
    assert rig.calls == []
    assert rig.producer.logged[0].status == "expired"


async def test_an_unmapped_endpoint_is_404() -> None:
    rig = Rig(answer(200, {}))
    reply = await rig.send(request(endpoint="gone"))
    assert (reply.http_status, reply.error_code) == (404, "not_found")
    assert rig.calls == []


async def test_a_duplicate_delivery_is_answered_without_a_second_call() -> None:
    rig = Rig(answer(200, {"free_slots": 3}))
    env = request()
    first = await rig.send(env)
    second = await rig.send(env)
    assert len(rig.calls) == 1
    assert first == second
    assert len(rig.producer.sent) == 2  # the reply is published again, same id
    assert [e.status for e in rig.producer.logged] == ["ok", "ok"]  # its log too (kept once)


async def test_a_late_redelivery_that_another_router_answered_is_not_sent_again() -> None:
    rig = Rig(answer(200, {"free_slots": 12}))
    waited = {"created_at": utcnow() - timedelta(seconds=5)}  # a rebalance, a restart
    answered, unanswered = (request().model_copy(update=waited) for _ in range(2))
    rig.logs.logged_elsewhere.add(answered.id)
    await rig.handler(answered)
    assert (rig.calls, rig.producer.sent, rig.producer.logged) == ([], [], [])
    reply = await rig.send(unanswered)  # old too, but nobody logged it: the model is called
    assert reply.ok
    assert len(rig.calls) == 1
    assert rig.logs.lookups == [answered.id, unanswered.id]


async def test_a_fresh_delivery_is_not_looked_up() -> None:
    rig = Rig(answer(200, {"free_slots": 12}))
    env = request()
    assert (await rig.send(env)).ok
    assert (await rig.send(env)).ok  # delivered twice to this router: its memory answers
    assert len(rig.calls) == 1
    assert rig.logs.lookups == []


class Flaky(FakeProducer):
    """A producer whose broker does not take the logs topic until told to."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_logs = True

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if topic == LOGS_TOPIC and self.refuse_logs:
            raise KafkaConnectionError("broker gone")
        await super().send_and_wait(topic, value, key)


async def test_a_call_whose_log_the_broker_did_not_take_fails_and_is_logged_on_its_retry() -> None:
    flaky = Flaky()
    rig = Rig(answer(200, {"free_slots": 4}), producer=flaky)
    env = request()
    with pytest.raises(BusUnavailable):  # the message is not done: its offset is not committed
        await rig.handler(env)
    assert rig.producer.replies()[0].ok  # the caller had its answer meanwhile
    flaky.refuse_logs = False
    await rig.handler(env)  # the loop's retry: the first outcome, logged this time
    assert len(rig.calls) == 1
    assert [e.status for e in rig.producer.logged] == ["ok"]


async def test_the_reply_is_produced_before_the_log() -> None:
    rig = Rig(answer(200, {"free_slots": 4}))
    order: list[str] = []
    send = rig.producer.send_and_wait

    async def noting(topic: str, value: bytes, key: bytes | None = None) -> None:
        order.append("log" if topic == LOGS_TOPIC else "reply")
        await send(topic, value, key)

    rig.producer.send_and_wait = noting
    await rig.send(request())
    assert order == ["reply", "log"]
