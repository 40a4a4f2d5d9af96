"""An accepted request that no worker records is not left saying `accepted` in silence: past
`unseen_after_s` its status says so (real ingest, Kafka and FerretDB; no enqueuer runs)."""

from __future__ import annotations

import asyncio

from tests.conftest import Bus
from tests.integration.test_ingest_access import bearer, ingest_with, map_parking
from tests.support import Issuer, eventually


async def test_a_request_no_worker_picked_up_says_so_past_the_bound(
    bus: Bus, issuer: Issuer
) -> None:
    async with ingest_with(bus, issuer, unseen_after_s=1.0) as client:
        task_id = await map_parking(client, issuer)
        alice = bearer(issuer.token())
        accepted = await client.post(
            "/v1/enqueue", json={"task_id": task_id, "input": {}}, headers=alice
        )
        assert accepted.status_code == 202
        url = f"/v1/requests/{accepted.json()['request_id']}"
        first = (await client.get(url, headers=alice)).json()
        assert (first["status"], first["error"]) == ("accepted", None)
        await asyncio.sleep(1.0)

        async def told() -> dict[str, object] | None:
            body: dict[str, object] = (await client.get(url, headers=alice)).json()
            return body if body.get("error") else None

        later = await eventually(told, timeout_s=10, what="the unseen message")
        assert later["status"] == "accepted"
        assert "No worker has picked this request up" in str(later["error"])
        # Another user still cannot see it.
        other = await client.get(url, headers=bearer(issuer.token("bob")))
        assert other.status_code == 404
