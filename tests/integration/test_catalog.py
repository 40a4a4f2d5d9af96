"""`GET /v1/catalog`: what a user may call, by opaque id, with descriptions and declared input
shapes, and never a real ClearML id or a replica address."""

from __future__ import annotations

import httpx

from tests.fixtures import PARKING
from tests.support import Issuer

SCHEMA = {
    "type": "object",
    "required": ["capacity"],
    "properties": {"capacity": {"type": "integer"}},
}


def admin(issuer: Issuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token('root', ['RootAdmin'])}"}


async def test_a_user_sees_the_mapped_tasks_and_endpoints_without_real_ids(
    ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    task = await ingest.post(
        "/v1/admin/task-mappings?force=true",
        json={
            "clearml_task_id": PARKING,
            "default_queue": "gpu-a100",
            "allowed_queues": ["cpu", "gpu-a100"],
            "description": "Parking occupancy, retrained nightly",
        },
        headers=admin(issuer),
    )
    assert task.status_code == 201, task.text
    machine = await ingest.post(
        "/v1/admin/serving-machines",
        json={
            "serving_task_id": "7a" * 16,
            "base_urls": ["http://10.9.8.7:8080/serve"],
            "description": "city models",
        },
        headers=admin(issuer),
    )
    assert machine.status_code == 201, machine.text
    machine_id = machine.json()["machine_id"]
    for endpoint, extra in (
        ("parking_free_slots", {"description": "Free slots now", "input_schema": SCHEMA}),
        ("traffic_flow", {}),
    ):
        mapped = await ingest.post(
            "/v1/admin/endpoint-mappings",
            json={"machine_id": machine_id, "endpoint": endpoint, "timeout_s": 10, **extra},
            headers=admin(issuer),
        )
        assert mapped.status_code == 201, mapped.text

    response = await ingest.get(
        "/v1/catalog", headers={"Authorization": f"Bearer {issuer.token('alice')}"}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "tasks": [
            {
                "task_id": task.json()["task_id"],
                "description": "Parking occupancy, retrained nightly",
                "default_queue": "gpu-a100",
                "queues": ["gpu-a100", "cpu"],
            }
        ],
        "endpoints": [
            {
                "machine_id": machine_id,
                "endpoint": "parking_free_slots",
                "description": "Free slots now",
                "machine_description": "city models",
                "timeout_s": 10.0,
                "input_schema": SCHEMA,
            },
            {
                "machine_id": machine_id,
                "endpoint": "traffic_flow",
                "description": "",
                "machine_description": "city models",
                "timeout_s": 10.0,
                "input_schema": None,
            },
        ],
    }
    assert PARKING not in response.text
    assert "7a7a7a" not in response.text
    assert "10.9.8.7" not in response.text


async def test_the_catalog_needs_a_token(ingest: httpx.AsyncClient) -> None:
    response = await ingest.get("/v1/catalog")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_an_endpoint_whose_machine_was_removed_is_not_offered(
    ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    machine = await ingest.post(
        "/v1/admin/serving-machines",
        json={"serving_task_id": "5c" * 16, "base_urls": ["http://10.9.8.7:8080/serve"]},
        headers=admin(issuer),
    )
    machine_id = machine.json()["machine_id"]
    await ingest.post(
        "/v1/admin/endpoint-mappings",
        json={"machine_id": machine_id, "endpoint": "gone"},
        headers=admin(issuer),
    )
    removed = await ingest.delete(f"/v1/admin/serving-machines/{machine_id}", headers=admin(issuer))
    assert removed.status_code == 204
    response = await ingest.get(
        "/v1/catalog", headers={"Authorization": f"Bearer {issuer.token('alice')}"}
    )
    assert response.json() == {"tasks": [], "endpoints": []}
