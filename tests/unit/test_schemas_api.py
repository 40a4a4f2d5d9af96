"""What Snap4City's enqueue node really sends is accepted on the compatibility path."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.api import CompatEnqueueRequest

BASE = {"access_token": "t", "task_id": "ab" * 16}


@pytest.mark.parametrize("queue", ["", "  ", None])
def test_an_empty_queue_means_the_default(queue: str | None) -> None:
    assert CompatEnqueueRequest.model_validate({**BASE, "queue": queue}).queue is None


def test_params_as_json_text_of_an_object_are_read_as_the_object() -> None:
    body = CompatEnqueueRequest.model_validate({**BASE, "params": '{"lr": 0.1}'})
    assert body.params == {"lr": 0.1}


@pytest.mark.parametrize("params", ["[1, 2]", "not json", "3"])
def test_other_params_text_is_still_refused(params: str) -> None:
    with pytest.raises(ValidationError, match="params"):
        CompatEnqueueRequest.model_validate({**BASE, "params": params})


def test_a_bad_queue_name_is_still_refused() -> None:
    with pytest.raises(ValidationError, match="queue"):
        CompatEnqueueRequest.model_validate({**BASE, "queue": "../etc"})
