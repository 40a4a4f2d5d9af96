"""The ASGI app over httpx.ASGITransport: ClearML Serving routes, error shapes and probes."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest

CAR_PARK = {
    "capacity": 250,
    "hour": 9,
    "weekday": 0,
    "temperature_c": 8.0,
    "rain_mm": 0.0,
    "event_nearby": True,
}


@pytest.mark.parametrize(
    "path",
    ["/serve/parking_free_slots", "/serve/parking_free_slots/", "/serve/parking_free_slots/1"],
)
async def test_prediction_routes(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json=CAR_PARK)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert 0 <= body["free_slots"] <= 250
    assert body["model"] == "parking_free_slots"


async def test_instances_over_http(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/serve/parking_free_slots", json={"instances": [CAR_PARK, {**CAR_PARK, "hour": 3}]}
    )
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


async def test_echo_has_no_envelope(client: httpx.AsyncClient) -> None:
    response = await client.post("/serve/echo", json={"x0": 1, "x1": [2, 3]})
    assert response.json() == {"echo": {"x0": 1, "x1": [2, 3]}}


async def test_gzip_body_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/serve/echo",
        content=gzip.compress(orjson.dumps({"zipped": True})),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.json() == {"echo": {"zipped": True}}


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/serve/no_such_model", "no_such_model"),
        ("/serve/parking_free_slots/9", "parking_free_slots/9"),
    ],
)
async def test_unknown_endpoint_or_version_is_404(
    client: httpx.AsyncClient, path: str, key: str
) -> None:
    response = await client.post(path, json=CAR_PARK)
    assert response.status_code == 404
    assert response.json() == {"detail": f"Error processing request, endpoint was not found: {key}"}


async def test_missing_feature_is_422(client: httpx.AsyncClient) -> None:
    body = {k: v for k, v in CAR_PARK.items() if k != "weekday"}
    response = await client.post("/serve/parking_free_slots", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": "missing feature: weekday"}


async def test_wrong_type_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/serve/parking_free_slots", json={**CAR_PARK, "hour": "nine"})
    assert response.status_code == 422
    assert "'hour'" in response.json()["detail"]


@pytest.mark.parametrize("content", [b"{not json", b""])
async def test_body_that_is_not_json_is_422(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post("/serve/echo", content=content)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("request body is not valid JSON")


async def test_model_crash_is_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving_node.endpoints import EchoEndpoint

    def boom(self: EchoEndpoint, body: object) -> object:
        raise RuntimeError("weights corrupted")

    monkeypatch.setattr(EchoEndpoint, "predict", boom)
    response = await client.post("/serve/echo", json={})
    assert response.status_code == 500
    assert response.json() == {"detail": "Error processing request: weights corrupted"}


async def test_serve_is_post_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/serve/parking_free_slots")
    assert response.status_code == 405


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nothing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_health(client: httpx.AsyncClient) -> None:
    body = (await client.get("/health")).json()
    assert body["status"] == "healthy"
    assert body["service"] == "clearml-serving"
    assert body["instance_id"] == "node-under-test"
    assert {"version", "timestamp"} <= set(body)


async def test_readiness_and_liveness(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readiness")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["models_loaded"] == 2
    assert (await client.get("/liveness")).json()["status"] == "alive"


async def test_metrics_count_requests_and_predictions(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).json()
    assert before["total_requests"] == 0
    assert before["last_prediction_timestamp"] is None
    await client.post("/serve/parking_free_slots", json=CAR_PARK)
    after = (await client.get("/metrics")).json()
    assert after["total_requests"] == 1
    assert after["last_prediction_timestamp"] is not None
    assert after["uptime_seconds"] >= 0
    assert {"endpoint": "parking_free_slots", "version": "1", "loaded": True} in after["models"]
