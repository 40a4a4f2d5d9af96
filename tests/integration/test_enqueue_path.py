"""The first path through the bus: HTTP → Kafka → enqueuer → ClearML (simulator) → MongoDB."""

from __future__ import annotations

from typing import Any

import httpx

from clearml_sim.testing import SimServer
from tests.fixtures import Worker
from tests.support import Issuer, eventually


def auth(issuer: Issuer, user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user)}"}


async def status_of(
    ingest: httpx.AsyncClient, issuer: Issuer, rid: str, user: str = "alice"
) -> dict[str, Any]:
    response = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer, user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_enqueue_runs_the_task_and_the_timeline_shows_it(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    sim: SimServer,
    enqueuer: Worker,
    parking_task_id: str,
) -> None:
    response = await ingest.post(
        "/v1/enqueue",
        json={"task_id": parking_task_id, "input": {"lr": 0.05, "Args/batch_size": 32}},
        headers=auth(issuer),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["queue"] == "gpu-a100"
    rid = body["request_id"]

    async def queued() -> dict[str, Any] | None:
        status = await status_of(ingest, issuer, rid)
        return status if status["status"] == "queued" else None

    status = await eventually(queued, what="request queued")
    assert [e["status"] for e in status["timeline"]] == ["accepted", "cloned", "queued"]
    assert status["admin"] is None  # a user never sees internal ids
    clones = [t for t in sim.state.tasks.values() if f"mlbus-request:{rid}" in t.get("tags", [])]
    assert len(clones) == 1
    params = clones[0]["hyperparams"]
    assert params["General"]["lr"]["value"] == "0.05"
    assert params["Args"]["batch_size"]["value"] == "32"


async def test_unknown_task_is_404_and_nothing_is_published(
    ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    response = await ingest.post(
        "/v1/enqueue", json={"task_id": "ab" * 16, "input": {}}, headers=auth(issuer)
    )
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "task_not_found"
    assert body["request_id"]


async def test_bad_input_gets_422_with_field_errors(
    ingest: httpx.AsyncClient, issuer: Issuer, parking_task_id: str
) -> None:
    response = await ingest.post(
        "/v1/enqueue", json={"task_id": parking_task_id, "input": [1, 2]}, headers=auth(issuer)
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert any(f["field"].startswith("input") for f in body["details"])
    malformed = await ingest.post(
        "/v1/enqueue",
        content=b"{not json",
        headers={**auth(issuer), "content-type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "invalid_request"


async def test_missing_or_bad_token_is_401(ingest: httpx.AsyncClient, issuer: Issuer) -> None:
    body = {"task_id": "ab" * 16, "input": {}}
    assert (await ingest.post("/v1/enqueue", json=body)).status_code == 401
    bad = {"Authorization": "Bearer " + issuer.token()[:-4] + "AAAA"}
    response = await ingest.post("/v1/enqueue", json=body, headers=bad)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_body_over_the_limit_is_413(ingest: httpx.AsyncClient, issuer: Issuer) -> None:
    huge = {"task_id": "ab" * 16, "input": {"blob": "x" * 1_100_000}}
    response = await ingest.post("/v1/enqueue", json=huge, headers=auth(issuer))
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_readiness_is_green_when_kafka_and_mongo_answer(ingest: httpx.AsyncClient) -> None:
    response = await ingest.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks == {
        "kafka": "ok",
        "mongodb": "ok",
        "issuer": "ok",
        "replies": "ok",
        "notifications": "ok",
    }


async def test_only_the_requester_and_admins_read_a_request(
    ingest: httpx.AsyncClient, issuer: Issuer, enqueuer: Worker, parking_task_id: str
) -> None:
    response = await ingest.post(
        "/v1/enqueue", json={"task_id": parking_task_id, "input": {}}, headers=auth(issuer)
    )
    rid = response.json()["request_id"]
    other = await ingest.get(f"/v1/requests/{rid}", headers=auth(issuer, "bob"))
    assert other.status_code == 404  # not 403: another user's request does not exist for bob
    assert other.json()["code"] == "request_not_found"
    admin = {"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"}

    async def admin_view() -> dict[str, Any] | None:
        body: dict[str, Any] = (await ingest.get(f"/v1/requests/{rid}", headers=admin)).json()
        return body if body["status"] == "queued" else None

    body = await eventually(admin_view, what="admin sees the queued request")
    assert body["admin"]["user"] == "alice"
    assert len(body["admin"]["clone_id"]) == 32


async def test_a_queue_the_mapping_does_not_allow_is_403(
    ingest: httpx.AsyncClient, issuer: Issuer, parking_task_id: str
) -> None:
    response = await ingest.post(
        "/v1/enqueue",
        json={"task_id": parking_task_id, "queue_name": "gpu-secret", "input": {}},
        headers=auth(issuer),
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "queue_not_allowed"
    assert "gpu-a100" in body["message"]


async def test_a_user_cannot_manage_mappings(ingest: httpx.AsyncClient, issuer: Issuer) -> None:
    response = await ingest.get("/v1/admin/task-mappings", headers=auth(issuer))
    assert response.status_code == 403
    assert response.json()["code"] == "admin_required"
