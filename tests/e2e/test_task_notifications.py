"""A task that fails on the cluster reaches its requester's live stream, and only theirs:
HTTP → Kafka → enqueuer → ClearML (simulator) → monitor → task event → notifier →
mlbus.notifications → ingest's SSE stream (and MongoDB)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clearml_sim.testing import SimServer
from tests.conftest import Bus
from tests.e2e.test_enqueue_lifecycle import ALWAYS_FAILS, SIM_FAILURE, running_monitor
from tests.fixtures import Worker, monitor_settings
from tests.integration.test_notifier import notifier, notifier_settings
from tests.support import Issuer, eventually, queues_seen


@pytest.fixture
async def cluster(bus: Bus, sim: SimServer, mongo_db: Any) -> AsyncIterator[None]:
    """The monitor and the notifier, running beside the enqueuer fixture."""
    async with (
        running_monitor(monitor_settings(bus, sim)),
        notifier(notifier_settings(bus)),
    ):
        await queues_seen(mongo_db, "gpu-a100")
        yield


@contextlib.asynccontextmanager
async def stream_of(ingest: httpx.AsyncClient, token: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Collects the notifications a user's live stream shows, in the background."""
    events: list[dict[str, Any]] = []
    opened = asyncio.Event()

    async def read() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with ingest.stream("GET", "/v1/notifications/stream", headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    opened.set()
                elif line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    task = asyncio.create_task(read())
    await asyncio.wait_for(opened.wait(), 10)
    try:
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.usefixtures("enqueuer", "cluster")
async def test_a_failed_task_is_told_to_its_requester_only(
    ingest: httpx.AsyncClient, issuer: Issuer, mongo_db: Any, enqueuer: Worker
) -> None:
    mapped = await ingest.post(
        "/v1/admin/task-mappings",
        json={"clearml_task_id": ALWAYS_FAILS, "default_queue": "gpu-a100"},
        headers={"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"},
    )
    assert mapped.status_code == 201, mapped.text
    async with (
        stream_of(ingest, issuer.token("alice")) as alice,
        stream_of(ingest, issuer.token("bob")) as bob,
        stream_of(ingest, issuer.token("carol", ["AreaManager"])) as operator,
    ):
        response = await ingest.post(
            "/v1/enqueue",
            json={"task_id": mapped.json()["task_id"], "input": {}},
            headers={"Authorization": f"Bearer {issuer.token('alice')}"},
        )
        assert response.status_code == 202, response.text
        rid = response.json()["request_id"]
        deadline = asyncio.get_running_loop().time() + 40
        while not any(e["kind"] == "task_failed" for e in alice):
            assert asyncio.get_running_loop().time() < deadline, alice
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # time for anything wrongly addressed to reach bob too
    failed = next(e for e in alice if e["kind"] == "task_failed")
    assert failed["user"] == "alice"
    assert rid in failed["message"]
    assert SIM_FAILURE in failed["message"]
    assert all(e["user"] == "alice" for e in alice)
    assert bob == []
    assert any(e["id"] == failed["id"] for e in operator)  # operators see every notification
    stored = await eventually(
        lambda: mongo_db["notifications"].find_one({"_id": failed["id"]}),
        timeout_s=10,
        what="the notification in MongoDB",
    )
    assert stored["user"] == "alice"
