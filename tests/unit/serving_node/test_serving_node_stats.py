"""Request counting: per endpoint, and per X-Request-ID in a bounded record."""

from __future__ import annotations

import httpx

from serving_node.stats import RequestIdLog


def test_request_id_log_counts_repeats() -> None:
    log = RequestIdLog(capacity=10)
    assert [log.seen("a"), log.seen("b"), log.seen("a")] == [1, 1, 2]
    assert log.count("a") == 2
    assert log.count("b") == 1
    assert log.count("c") == 0


def test_request_id_log_is_bounded_and_forgets_least_recent() -> None:
    log = RequestIdLog(capacity=3)
    for rid in ["a", "b", "c"]:
        log.seen(rid)
    log.seen("a")  # refreshes a
    log.seen("d")  # evicts b, the least recently seen
    assert len(log) == 3
    assert log.count("b") == 0
    assert log.count("a") == 2
    assert log.count("c") == 1
    assert log.count("d") == 1


async def test_request_ids_are_counted_per_arrival(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.post("/serve/echo", json={}, headers={"X-Request-ID": "req-twice"})
    await client.post("/serve/echo", json={}, headers={"x-request-id": "req-once"})
    twice = await client.get("/_node/requests/req-twice")
    assert twice.json() == {"request_id": "req-twice", "count": 2}
    assert (await client.get("/_node/requests/req-once")).json()["count"] == 1
    assert (await client.get("/_node/requests/never-seen")).json()["count"] == 0


async def test_failed_and_unknown_requests_still_count(client: httpx.AsyncClient) -> None:
    await client.post("/_node/faults", json={"error_rate": 1.0})
    await client.post("/serve/echo", json={}, headers={"X-Request-ID": "r1"})
    await client.post("/serve/missing", json={}, headers={"X-Request-ID": "r2"})
    assert (await client.get("/_node/requests/r1")).json()["count"] == 1
    assert (await client.get("/_node/requests/r2")).json()["count"] == 1


async def test_stats_per_endpoint_and_reset(client: httpx.AsyncClient) -> None:
    await client.post("/serve/echo", json={})
    await client.post("/serve/echo", content=b"not json")
    await client.post("/serve/nope", json={})
    stats = (await client.get("/_node/stats")).json()
    assert stats["instance_id"] == "node-under-test"
    assert stats["total_requests"] == 3
    assert stats["endpoints"]["echo"] == {"requests": 2, "statuses": {"200": 1, "422": 1}}
    assert stats["endpoints"]["<not found>"]["statuses"] == {"404": 1}
    reset = (await client.delete("/_node/stats")).json()
    assert reset["total_requests"] == 0
    assert reset["endpoints"] == {}


async def test_control_api_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_node/nothing")).status_code == 404
    assert (await client.put("/_node/stats")).status_code == 405
    assert (await client.post("/_node/requests/x")).status_code == 405
