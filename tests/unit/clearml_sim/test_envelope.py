"""The response envelope and transport quirks (§1.1, §2)."""

from __future__ import annotations

import httpx
import orjson

from clearml_sim import SimConfig
from clearml_sim.demo import DEMO_TEMPLATE_IDS
from clearml_sim.testing import InProcessApi, basic_auth

BASIC = basic_auth(SimConfig())

TEMPLATE = DEMO_TEMPLATE_IDS["parking-occupancy-train"]


async def test_envelope_shape_and_status(client: httpx.AsyncClient) -> None:
    resp = await client.request(
        "GET", "/v2.23/tasks.get_by_id", json={"task": TEMPLATE}, headers={"Authorization": BASIC}
    )
    assert resp.status_code == 200
    assert resp.headers["server"] == "clearml"
    meta = resp.json()["meta"]
    assert meta["endpoint"] == {
        "name": "tasks.get_by_id",
        "requested_version": "2.23",
        "actual_version": "1.0",
    }
    assert (meta["result_code"], meta["result_subcode"], meta["result_msg"]) == (200, 0, "OK")
    assert len(meta["id"]) == 32
    assert resp.json()["data"]["task"]["name"] == "parking-occupancy-train"


async def test_unknown_endpoint_is_404_envelope(api: InProcessApi) -> None:
    status, env = await api.call("workers.get_runtime_properties", {"worker": "w"})
    assert status == 404
    assert env["meta"]["result_subcode"] == 0
    assert env["meta"]["result_msg"] == (
        "Unable to find endpoint for name workers.get_runtime_properties and version 2.23"
    )


async def test_version_below_min_is_unknown(api: InProcessApi) -> None:
    status, env = await api.call("tasks.edit_hyper_params", {"task": TEMPLATE}, version="2.5")
    assert status == 404
    assert "version 2.5" in env["meta"]["result_msg"]


async def test_unversioned_path_uses_max_version(api: InProcessApi) -> None:
    status, env = await api.call("queues.get_default", version="")
    assert status == 200
    assert env["meta"]["endpoint"]["requested_version"] == "2.31"
    assert env["data"]["name"] == "default"


async def test_any_method_and_unknown_keys(api: InProcessApi) -> None:
    for method in ("GET", "POST", "PUT"):
        status, env = await api.call(
            "tasks.get_by_id", {"task": TEMPLATE, "method": "get"}, method=method
        )
        assert status == 200, (method, env["meta"])


async def test_query_string_is_merged_and_coerced(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/queues.get_all?name=gpu&max_task_entries=0&search_hidden=false",
        headers={"Authorization": BASIC},
    )
    names = sorted(q["name"] for q in resp.json()["data"]["queues"])
    assert names == ["gpu-a100", "gpu-t4"]  # unanchored regex


async def test_json_lines_batch(client: httpx.AsyncClient) -> None:
    lines = b"\n".join(orjson.dumps({"type": "log", "task": TEMPLATE, "msg": m}) for m in "abc")
    resp = await client.post(
        "/events.add_batch",
        content=lines,
        headers={"Authorization": BASIC, "Content-Type": "application/json-lines"},
    )
    assert resp.status_code == 200
    assert resp.json()["data"] == {"added": 3, "errors": 0}


async def test_bad_json_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post("/tasks.get_all", content=b"{nope", headers={"Authorization": BASIC})
    assert resp.status_code == 400
    assert resp.json()["meta"]["result_subcode"] == 12
