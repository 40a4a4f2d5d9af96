"""One rule for the edge and the codec: what ingest accepts, every worker can decode."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from schemas.base import utcnow
from schemas.codec import SchemaError, decode, encode, envelope_for, salvage
from schemas.enqueue import EnqueueTask
from schemas.inference import InferenceRequested
from schemas.jsonlimits import INT_MAX, INT_MIN, MAX_DEPTH, JSONLimitError, loads_strict
from schemas.topics import ENQUEUE_REQUESTS, INFERENCE_REQUESTS, TopicSpec

RID = "0123456789abcdef0123456789abcdef"


def deepest_body() -> Any:
    """The deepest body the edge accepts, with the extreme numbers, as ingest parses it."""
    inner = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    raw = f'{{"input": {{"deep": {inner}, "lo": {INT_MIN}, "hi": {INT_MAX}, "f": -1.5e308}}}}'
    return loads_strict(raw)


def payload_for(spec: TopicSpec, body: Any) -> Any:
    if spec is ENQUEUE_REQUESTS:
        return EnqueueTask(
            task_id="a" * 32, template_task_id="b" * 32, queue_name="q", input=body["input"]
        )
    return InferenceRequested(
        machine_id="c" * 32,
        endpoint="e",
        input=body["input"],
        reply_to="mlbus.replies.x",
        deadline=utcnow() + timedelta(seconds=5),
    )


@pytest.mark.parametrize("spec", [ENQUEUE_REQUESTS, INFERENCE_REQUESTS], ids=lambda s: s.name)
def test_what_the_edge_accepts_every_request_topic_decodes(spec: TopicSpec) -> None:
    body = deepest_body()
    envelope = envelope_for(spec, payload_for(spec, body), id=RID, user="alice")
    decoded = decode(spec, encode(envelope))
    assert decoded.payload.input == body["input"]


def test_one_level_more_is_refused_at_the_edge() -> None:
    too_deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(JSONLimitError, match="nesting deeper"):
        loads_strict(too_deep)
    with pytest.raises(JSONLimitError, match="nesting deeper"):
        loads_strict("[" * 10_000 + "]" * 10_000)  # deeper than Python's own recursion


@pytest.mark.parametrize("levels", [197, 10_000])
def test_the_codec_refuses_a_deep_message_with_a_schema_error(levels: int) -> None:
    """A message from elsewhere (not ingest) that nests too deep is a schema error with a
    reason, never a decoder's recursion failure."""
    raw = (
        '{"id": "' + RID + '", "type": "EnqueueTask", "schema_version": 1, "user": "bob", '
        '"payload": {"task_id": "'
        + "a" * 32
        + '", "input": {"x": '
        + "[" * levels
        + "]" * levels
        + "}}}"
    )
    with pytest.raises(SchemaError, match="nested deeper"):
        decode(ENQUEUE_REQUESTS, raw.encode())
    salvaged = salvage(ENQUEUE_REQUESTS, raw.encode(), RID.encode())
    assert salvaged is not None
    assert salvaged.id == RID  # from the key: the body was too deep to read at all
    assert salvaged.payload.task_id is None


def test_salvage_reads_what_it_can_and_needs_a_request_id() -> None:
    raw = (
        b'{"id": "' + RID.encode() + b'", "type": "EnqueueTask", "schema_version": 1, '
        b'"user": "bob", "payload": {"task_id": "t1", "queue_name": 5, "input": {"a": 1}}}'
    )
    env = salvage(ENQUEUE_REQUESTS, raw, None)
    assert env is not None
    assert (env.id, env.user, env.payload.task_id, env.payload.queue_name) == (RID, "bob", "t1", 5)
    assert env.payload.input is None  # nested fields are not salvaged
    assert salvage(ENQUEUE_REQUESTS, b"not json", None) is None
    assert salvage(ENQUEUE_REQUESTS, b"not json", b"$bad key") is None
    assert salvage(ENQUEUE_REQUESTS, b"not json", RID.encode()) is not None
