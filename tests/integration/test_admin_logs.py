"""The admin API over real ingest, logger, Kafka and FerretDB: logs filtered, paginated and
exported as CSV; the audit trail; who may see what."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from schemas.base import utcnow
from schemas.collections import FOLDS
from schemas.logs import RequestLogged
from schemas.topics import LOGS
from services.logger.app import run as run_logger
from tests.conftest import Bus
from tests.fixtures import Worker, running_worker
from tests.integration.test_logger import logger_settings, publish
from tests.support import Issuer, eventually

MACHINE = "c" * 32


def auth(issuer: Issuer, user: str, roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user, roles)}"}


@pytest.fixture
async def logger(bus: Bus) -> AsyncIterator[Worker]:
    async with running_worker(run_logger, logger_settings(bus)) as worker:
        yield worker


@pytest.fixture
async def logged(bus: Bus, mongo_db: Any, logger: Worker) -> list[RequestLogged]:
    """24 on-demand calls, newest first: alice and bob in turn, every third one failed."""
    now, entries = utcnow(), []
    for i in range(24):
        status = "failed" if i % 3 == 0 else "ok"
        entries.append(
            RequestLogged(
                request_id=f"{i:032x}",
                path="ondemand",
                status=status,
                user="alice" if i % 2 == 0 else "bob",
                target=f"{MACHINE}/parking" if i < 12 else f"{MACHINE}/traffic",
                latency_ms=10.0 + i,
                accepted_at=now - timedelta(minutes=i),
                details={"http_status": 200 if status == "ok" else 502},
            )
        )
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap)
    await producer.start()
    try:
        for entry in entries:
            await publish(producer, bus, LOGS, entry)
    finally:
        await producer.stop()

    async def all_folded() -> bool:
        # a fold is marked done once all its writes landed (the view document may land before
        # the log index's entry: they are written together)
        done = await mongo_db[FOLDS].count_documents({"done": True})
        return done == len(entries)

    await eventually(all_folded, what="every log in the view")
    return entries


async def pages(
    ingest: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await ingest.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_admin_logs_are_filtered_paginated_newest_first_and_exported_as_csv(
    ingest: httpx.AsyncClient, issuer: Issuer, logged: list[RequestLogged]
) -> None:
    admin = auth(issuer, "admin", ["RootAdmin"])
    everything = await pages(ingest, "/v1/admin/logs", admin, limit=5)
    assert [e["request_id"] for e in everything] == [e.request_id for e in logged]
    assert everything[0]["admin"] is not None
    failed_alice = await pages(
        ingest, "/v1/admin/logs/ondemand", admin, user="alice", status="failed", limit=2
    )
    expected = [e.request_id for e in logged if e.user == "alice" and e.status == "failed"]
    assert [e["request_id"] for e in failed_alice] == expected
    traffic = await pages(
        ingest, "/v1/admin/logs", admin, machine_id=MACHINE, endpoint="traffic", limit=50
    )
    assert len(traffic) == 12
    assert {e["endpoint"] for e in traffic} == {"traffic"}
    window = await pages(
        ingest,
        "/v1/admin/logs",
        admin,
        since=(logged[5].accepted_at or utcnow()).isoformat(),
        until=(logged[2].accepted_at or utcnow()).isoformat(),
    )
    assert [e["request_id"] for e in window] == [e.request_id for e in logged[2:6]]

    as_csv = await ingest.get("/v1/admin/logs/ondemand.csv", params={"user": "bob"}, headers=admin)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["request_id"] for r in rows] == [e.request_id for e in logged if e.user == "bob"]
    by_accept = await ingest.get("/v1/admin/logs", headers={**admin, "Accept": "text/csv"})
    assert len(list(csv.DictReader(io.StringIO(by_accept.text)))) == len(logged)

    first = (await ingest.get("/v1/admin/logs", params={"limit": 3}, headers=admin)).json()
    reused = await ingest.get(
        "/v1/admin/logs", params={"cursor": first["next_cursor"], "user": "bob"}, headers=admin
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "invalid_cursor"
    bad = await ingest.get("/v1/admin/logs", params={"endpoint": "parking"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_request"

    async def counted() -> dict[str, Any] | None:
        dashboard = await ingest.get("/v1/admin/dashboard", headers=admin)
        assert dashboard.status_code == 200, dashboard.text
        found: dict[str, Any] = dashboard.json()
        return found if found["ondemand"]["days"][-1]["count"] == len(logged) else None

    # Today's numbers are served from memory up to 10 s late (services/ingest/logviews.py).
    summary = await eventually(counted, timeout_s=30, what="the day's count on the dashboard")
    assert summary["ondemand"]["days"][-1]["errors"] == 8
    assert {u["name"]: u["count"] for u in summary["top_users"]} == {"alice": 12, "bob": 12}


async def test_users_see_only_their_own_logs_and_no_internal_ids(
    ingest: httpx.AsyncClient, issuer: Issuer, logged: list[RequestLogged]
) -> None:
    mine = await pages(ingest, "/v1/logs", auth(issuer, "bob"), limit=4)
    assert [e["request_id"] for e in mine] == [e.request_id for e in logged if e.user == "bob"]
    assert all(e["admin"] is None for e in mine)
    nobody = await pages(ingest, "/v1/logs/enqueue", auth(issuer, "bob"))
    assert nobody == []
    for path in ("/v1/admin/logs", "/v1/admin/dashboard", "/v1/admin/audit"):
        refused = await ingest.get(path, headers=auth(issuer, "bob"))
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "admin_required"


async def test_every_mapping_change_is_audited_with_before_and_after(
    ingest: httpx.AsyncClient, issuer: Issuer, parking_task_id: str
) -> None:
    admin = auth(issuer, "admin", ["RootAdmin"])
    gone = await ingest.delete(f"/v1/admin/task-mappings/{parking_task_id}", headers=admin)
    assert gone.status_code == 204
    trail = (await ingest.get("/v1/admin/audit", headers=admin)).json()["items"]
    assert [(e["action"], e["kind"], e["key"]) for e in trail] == [
        ("delete", "task_mappings", parking_task_id),
        ("create", "task_mappings", parking_task_id),
    ]
    deleted, created = trail
    assert deleted["actor"] == "admin"
    assert deleted["after"] is None
    assert deleted["before"]["default_queue"] == "gpu-a100"
    assert created["before"] is None
    assert created["after"]["task_id"] == parking_task_id
    assert "token" not in str(trail).lower()


async def test_another_users_request_is_not_found_and_enqueues_reach_the_logs(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    enqueuer: Worker,
    logger: Worker,
    parking_task_id: str,
) -> None:
    accepted = await ingest.post(
        "/v1/enqueue", json={"task_id": parking_task_id}, headers=auth(issuer, "alice")
    )
    rid = accepted.json()["request_id"]

    async def in_alices_logs() -> list[dict[str, Any]] | None:
        found = await pages(ingest, "/v1/logs", auth(issuer, "alice"))
        return found or None

    logs = await eventually(in_alices_logs, what="the enqueue in alice's logs")
    assert logs[0]["request_id"] == rid
    assert logs[0]["status"] == "queued"
    assert await pages(ingest, "/v1/logs", auth(issuer, "bob")) == []
    theirs = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer, "bob"))
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "request_not_found"
    own = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer, "alice"))
    assert own.status_code == 200
