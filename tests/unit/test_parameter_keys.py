"""A parameter key that would give ClearML an empty section or name ("/lr", "Args/") is 422 at
ingest, in the error shape, on both enqueue routes: the real server answers such a parameter
400/12, which would otherwise fail the request only after it was accepted."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from runtime.http import install_error_handlers
from schemas.api import CompatEnqueueRequest, EnqueueRequest
from services.enqueuer.params import to_hyperparams

TASK = "ab" * 16
BAD = [{"/lr": 1}, {"Args/": 1}, {" /x": 1}, {"": 1}, {"Args": {"": 1}}, {"Args": {" ": 1}}]


@pytest.mark.parametrize("params", BAD)
def test_keys_with_an_empty_section_or_name_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="empty section or name"):
        EnqueueRequest.model_validate({"task_id": TASK, "input": params})
    with pytest.raises(ValidationError, match="empty section or name"):
        CompatEnqueueRequest.model_validate(
            {"access_token": "t", "task_id": TASK, "params": params}
        )


def test_keys_that_name_a_section_and_a_parameter_pass_and_map_as_before() -> None:
    params = {"lr": 0.1, "Args/batch_size": 64, "Model": {"depth": 3}, "a/b/c": "x"}
    body = EnqueueRequest.model_validate({"task_id": TASK, "input": params})
    pairs = [(p["section"], p["name"]) for p in to_hyperparams(body.input)]
    assert pairs == [("General", "lr"), ("Args", "batch_size"), ("Model", "depth"), ("a", "b/c")]


async def test_the_edge_answers_422_in_the_error_shape() -> None:
    api = FastAPI()
    install_error_handlers(api)

    @api.post("/v1/enqueue")
    async def enqueue(body: EnqueueRequest) -> dict[str, str]:
        return {"status": "queued"}

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/v1/enqueue", json={"task_id": TASK, "input": {"/lr": 1}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "'/lr'" in body["message"]
