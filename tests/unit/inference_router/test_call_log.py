"""The call's log as the router publishes it (RequestLogged with the raw log inside), the raw
log the logger makes of it, and the router's bounded lookup of `ondemand_logs`. The collection
is a double here (the real cases: tests/integration/test_router_crash_logs.py and
tests/faults/test_ferretdb_stopped.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any, cast

from pymongo.errors import ServerSelectionTimeoutError

from schemas.base import Envelope, utcnow
from schemas.codec import decode, encode, envelope_for, salvage
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.topics import INFERENCE_REQUESTS, LOGS
from services.inference_router.calllog import call_log
from services.inference_router.outcomes import Outcome
from services.inference_router.store import OnDemandLogs
from services.logger.handlers import fact_of_log, raw_log
from tests.support import eventually


def request(**changes: Any) -> Envelope[InferenceRequested]:
    payload = InferenceRequested(
        machine_id="m1",
        endpoint="parking",
        version="2",
        input={},
        reply_to="t.replies",
        deadline=utcnow() + timedelta(seconds=5),
    )
    env = envelope_for(INFERENCE_REQUESTS, payload, user="alice")
    return cast("Envelope[InferenceRequested]", env.model_copy(update=changes))


def test_the_published_log_carries_the_raw_log_the_logger_writes() -> None:
    env = request(created_at=utcnow() - timedelta(milliseconds=20))
    reply = InferenceReplied(ok=True, http_status=200, output={"free_slots": 3}, model_ms=4.0)
    outcome = Outcome(
        reply, "ok", env.created_at + timedelta(milliseconds=2), replica_url="http://r0/serve"
    )
    entry = decode(LOGS, encode(envelope_for(LOGS, call_log(env, outcome)))).payload
    doc = raw_log(entry)
    assert doc is not None
    assert (doc["_id"], doc["user"], doc["status"]) == (env.id, "alice", "ok")
    assert (doc["machine_id"], doc["endpoint"], doc["version"]) == ("m1", "parking", "2")
    assert (doc["http_status"], doc["error_code"], doc["error"]) == (200, None, None)
    assert doc["created_at"] == env.created_at  # a time, not text: the logs sort by it
    assert doc["latency_ms"]["bus"] == 2.0
    assert doc["latency_ms"]["model"] == 4.0
    assert doc["latency_ms"]["total"] >= doc["latency_ms"]["bus"]
    assert doc["replica_url"] == "http://r0/serve"
    assert fact_of_log(entry).raw == doc


def test_an_error_outcome_keeps_its_message_and_code() -> None:
    reply = InferenceReplied(ok=False, http_status=504, error_code="expired", message="too late")
    doc = raw_log(call_log(request(), Outcome(reply, "expired", utcnow())))
    assert doc is not None
    assert (doc["status"], doc["error_code"], doc["error"]) == ("expired", "expired", "too late")


def test_two_outcomes_of_one_call_are_one_fact_and_enqueue_statuses_are_not() -> None:
    env = request()
    late_ok = call_log(env, Outcome(InferenceReplied(ok=True, http_status=200), "ok", utcnow()))
    expired = InferenceReplied(ok=False, http_status=504, error_code="expired")
    redelivered = call_log(env, Outcome(expired, "expired", utcnow()))
    assert fact_of_log(late_ok).key == fact_of_log(redelivered).key
    queued = late_ok.model_copy(update={"path": "enqueue", "status": "queued", "record": None})
    running = queued.model_copy(update={"status": "running"})
    assert fact_of_log(queued).key != fact_of_log(running).key
    assert raw_log(queued) is None


def test_a_salvaged_request_still_makes_a_raw_log() -> None:
    env = request()
    broken = {**json.loads(encode(env)), "payload": {"machine_id": 7, "input": [1] * 3}}
    salvaged = salvage(INFERENCE_REQUESTS, json.dumps(broken).encode(), env.id.encode())
    assert salvaged is not None
    failed = InferenceReplied(ok=False, http_status=502, error_code="request_failed")
    doc = raw_log(call_log(salvaged, Outcome(failed, "failed", utcnow())))
    assert doc is not None
    assert (doc["_id"], doc["machine_id"], doc["endpoint"]) == (env.id, "7", "")
    assert (doc["status"], doc["user"]) == ("failed", "alice")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeLogs:
    """`find_one` that hangs or fails as told."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.asked = 0
        self.released = asyncio.Event()

    async def find_one(self, query: dict[str, str], _projection: Any) -> dict[str, Any] | None:
        self.asked += 1
        if self.mode == "hang":  # slower than the caller waits, and not cancelled for it
            await self.released.wait()
        if self.mode == "away":
            raise ServerSelectionTimeoutError("no server")
        return {"_id": query["_id"]} if query["_id"] == "known" else None


async def _done(logs: OnDemandLogs) -> bool:
    return logs.pending == 0


class FakeDb:
    def __init__(self) -> None:
        self.logs = FakeLogs()

    def __getitem__(self, name: str) -> FakeLogs:
        return self.logs


async def test_a_lookup_is_bounded_and_a_failed_one_rests_the_store_a_while() -> None:
    db, clock = FakeDb(), Clock()
    logs = OnDemandLogs(cast(Any, db), timeout_s=0.05, rest_s=5.0, clock=clock)
    assert await logs.answered("known")
    assert not await logs.answered("other")
    db.logs.mode = "hang"
    async with asyncio.timeout(5):  # bounded by its 0.05 s, not the store's slowness
        assert not await logs.answered("known")
    assert logs.pending == 1  # still running in the background, not cancelled
    db.logs.mode = "ok"
    db.logs.released.set()
    await eventually(lambda: _done(logs), what="the late lookup ended")
    assert not await logs.answered("known")  # resting: not asked
    assert db.logs.asked == 3
    clock.now = 5.1
    assert await logs.answered("known")
    db.logs.mode = "away"
    assert not await logs.answered("known")
    assert not await logs.answered("known")
    assert db.logs.asked == 5
