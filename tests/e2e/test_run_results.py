"""Results back to the requester: HTTP → Kafka → enqueuer → ClearML (simulator) → monitor →
MongoDB, then `GET /v1/requests/{id}` shows what the completed run produced, and
`GET /v1/requests/{id}/artifacts/{name}` streams an artifact from the file server, with the
request's privacy rules and the file server's address never shown to the requester."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clearml_sim.testing import SimServer
from schemas.tasks import TaskEventKind
from services.ingest.app import create_app
from tests.conftest import Bus
from tests.e2e.test_enqueue_lifecycle import (
    auth,
    monitor,  # noqa: F401 - the fixture, by name
    settled,
    task_events,
)
from tests.fixtures import PARKING, ingest_settings
from tests.support import Issuer, ThreadedServer


@pytest.fixture
async def ingest(bus: Bus, issuer: Issuer, sim: SimServer) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest pointed at the simulator's file server."""
    settings = ingest_settings(bus, issuer, clearml_files_host=f"{sim.url}/files")
    server = ThreadedServer(create_app(settings), "ingest")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.usefixtures("enqueuer", "monitor")
async def test_a_completed_run_shows_its_results_and_streams_its_artifact(
    bus: Bus, ingest: httpx.AsyncClient, issuer: Issuer, sim: SimServer, mongo_db: Any
) -> None:
    admin = {"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"}
    mapped = await ingest.post(
        "/v1/admin/task-mappings",
        json={"clearml_task_id": PARKING, "default_queue": "gpu-a100", "description": "parking"},
        headers=admin,
    )
    assert mapped.status_code == 201, mapped.text
    response = await ingest.post(
        "/v1/enqueue", json={"task_id": mapped.json()["task_id"], "input": {}}, headers=auth(issuer)
    )
    assert response.status_code == 202, response.text
    rid = response.json()["request_id"]

    status = await settled(ingest, issuer, rid)
    assert status["status"] == "completed"
    results = status["results"]
    assert set(results["scalars"]) == {"Summary/accuracy", "Summary/loss"}
    assert [(a["name"], a["type"]) for a in results["artifacts"]] == [("predictions", "text/csv")]
    size = results["artifacts"][0]["size"]
    assert [(m["name"], m["type"]) for m in results["models"]] == [("model", "ScikitLearn")]
    assert sim.url not in str(status)  # the file server's address stays internal
    assert status["admin"] is None

    [completed] = [
        e
        for e in await task_events(bus, rid, TaskEventKind.COMPLETED)
        if e.kind is TaskEventKind.COMPLETED
    ]
    assert completed.results is not None
    assert completed.results.model_dump(mode="json") == results

    download = await ingest.get(f"/v1/requests/{rid}/artifacts/predictions", headers=auth(issuer))
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="predictions.csv"' in download.headers["content-disposition"]
    assert len(download.content) == size
    assert download.content.startswith(b"slot,free\n")

    other = await ingest.get(
        f"/v1/requests/{rid}/artifacts/predictions", headers=auth(issuer, "mallory")
    )
    assert (other.status_code, other.json()["code"]) == (404, "request_not_found")
    unknown = await ingest.get(f"/v1/requests/{rid}/artifacts/nothing", headers=auth(issuer))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "artifact_not_found")
    anonymous = await ingest.get(f"/v1/requests/{rid}/artifacts/predictions")
    assert anonymous.status_code == 401

    seen_by_admin = await ingest.get(f"/v1/requests/{rid}", headers=admin)
    uris = seen_by_admin.json()["admin"]["result_uris"]
    assert uris["predictions"].startswith(f"{sim.url}/files/")
    as_admin = await ingest.get(f"/v1/requests/{rid}/artifacts/predictions", headers=admin)
    assert as_admin.content == download.content

    path = uris["predictions"].removeprefix(f"{sim.url}/files/")
    sim.state.files.pop(path)  # gone from the file server: said so, without its address
    gone = await ingest.get(f"/v1/requests/{rid}/artifacts/predictions", headers=auth(issuer))
    assert (gone.status_code, gone.json()["code"]) == (404, "artifact_not_found")
    assert sim.url not in gone.text

    # A URI recorded on a task that is not under the file server is never fetched.
    await mongo_db["enqueue_logs"].update_one(
        {"_id": rid}, {"$set": {"result_uris.predictions": "http://169.254.169.254/latest"}}
    )
    elsewhere = await ingest.get(f"/v1/requests/{rid}/artifacts/predictions", headers=auth(issuer))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (502, "artifact_unavailable")
    assert "169.254" not in elsewhere.text
