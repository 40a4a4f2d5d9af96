"""A late failure of one delivery never overwrites what another recorded (real FerretDB): once a
request is queued (or has failed already), `record_failed` writes nothing and says so."""

from __future__ import annotations

from typing import Any

from schemas.base import utcnow
from services.enqueuer.store import EnqueueLogStore
from tests.integration.test_enqueue_faults import request


async def test_a_failure_after_queued_is_not_recorded(mongo_db: Any) -> None:
    store = EnqueueLogStore(mongo_db)
    env = request()
    assert await store.claim(env) is None
    await store.record_queued(env, "clone-1", utcnow(), True, {})
    assert await store.record_failed(env, "ClearML 400/121") is False
    doc = await mongo_db["enqueue_logs"].find_one({"_id": env.id})
    assert doc["status"] == "queued"
    assert "error" not in doc
    assert [h["status"] for h in doc["history"]] == ["accepted", "cloned", "queued"]


async def test_a_failure_of_an_accepted_or_unknown_request_is_recorded_once(
    mongo_db: Any,
) -> None:
    store = EnqueueLogStore(mongo_db)
    accepted, unknown = request(), request()
    await store.claim(accepted)
    assert await store.record_failed(accepted, "refused") is True
    assert await store.record_failed(accepted, "refused again") is False
    assert await store.record_failed(unknown, "salvaged") is True
    logs = mongo_db["enqueue_logs"]
    doc = await logs.find_one({"_id": accepted.id})
    assert (doc["status"], doc["error"]) == ("failed", "refused")
    assert [h["status"] for h in doc["history"]] == ["accepted", "failed"]
    doc = await logs.find_one({"_id": unknown.id})
    assert (doc["status"], doc["user"]) == ("failed", "alice")
