"""Registering mappings: a queue the cluster lacks is refused unless forced; a replica that does
not answer is registered with a warning."""

from __future__ import annotations

from typing import Any

import httpx

from schemas.base import utcnow
from serving_node.testing import RunningNode
from tests.fixtures import PARKING
from tests.support import Issuer


def admin(issuer: Issuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token('root', ['RootAdmin'])}"}


def queue_doc(name: str) -> dict[str, Any]:
    return {"_id": f"q-{name}", "queue_id": f"q-{name}", "name": name, "length": 0, "at": utcnow()}


async def test_queue_names_are_checked_against_the_clusters_queues(
    ingest: httpx.AsyncClient, issuer: Issuer, mongo_db: Any
) -> None:
    await mongo_db["queues"].insert_many([queue_doc("gpu-a100"), queue_doc("cpu")])
    body = {"clearml_task_id": PARKING, "default_queue": "gpu-a100", "allowed_queues": ["gpu-x"]}
    refused = await ingest.post("/v1/admin/task-mappings", json=body, headers=admin(issuer))
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_queue"
    assert "'gpu-x'" in refused.json()["message"]
    assert refused.json()["details"] == {"unknown": ["gpu-x"], "known": ["cpu", "gpu-a100"]}
    listed = await ingest.get("/v1/admin/task-mappings", headers=admin(issuer))
    assert listed.json() == []  # nothing half-done
    forced = await ingest.post(
        "/v1/admin/task-mappings?force=true", json=body, headers=admin(issuer)
    )
    assert forced.status_code == 201, forced.text
    assert forced.json()["warnings"] == [
        "The cluster has no queue 'gpu-x' now; registered anyway (force)."
    ]


async def test_without_a_queue_list_the_check_says_it_was_not_made(
    ingest: httpx.AsyncClient, issuer: Issuer
) -> None:
    body = {"clearml_task_id": PARKING, "default_queue": "gpu-a100"}
    created = await ingest.post("/v1/admin/task-mappings", json=body, headers=admin(issuer))
    assert created.status_code == 201, created.text
    assert "not checked" in created.json()["warnings"][0]


async def test_an_unreachable_replica_is_registered_with_a_warning(
    ingest: httpx.AsyncClient, issuer: Issuer, node: RunningNode
) -> None:
    dead = "http://127.0.0.1:9/serve"  # discard port: nothing listens
    body = {"serving_task_id": "5e" * 16, "base_urls": [node.serve_url, dead]}
    created = await ingest.post("/v1/admin/serving-machines", json=body, headers=admin(issuer))
    assert created.status_code == 201, created.text
    warnings = created.json()["warnings"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Replica {dead} did not answer http://127.0.0.1:9/health")
    listed = await ingest.get("/v1/admin/serving-machines", headers=admin(issuer))
    assert listed.json()[0]["base_urls"] == [node.serve_url, dead]
