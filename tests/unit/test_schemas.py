"""Golden example messages: every topic's model decodes its checked-in example and encodes it
back unchanged, so a change that breaks a consumer of version 1 fails here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import SchemaError, decode, encode
from schemas.topics import BY_TYPE, REGISTRY, REPLY_TEMPLATE, TopicSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
SPECS = (*REGISTRY, REPLY_TEMPLATE)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.message_type)
def test_golden_example_round_trips(spec: TopicSpec) -> None:
    path = EXAMPLES / f"{spec.message_type}.v{spec.version}.json"
    raw = path.read_bytes()
    envelope = decode(spec, raw)
    assert envelope.type == spec.message_type
    assert json.loads(encode(envelope)) == json.loads(raw)


def test_every_topic_has_a_distinct_message_type_and_a_dlq() -> None:
    assert len(BY_TYPE) == len(SPECS)
    for spec in REGISTRY:
        assert spec.partitions >= 1
        assert spec.dlq or spec.message_type == "DeadLetter"


def test_unknown_fields_are_ignored_so_additions_stay_compatible() -> None:
    spec = BY_TYPE["EnqueueTask"]
    doc = json.loads((EXAMPLES / "EnqueueTask.v1.json").read_bytes())
    doc["added_later"] = 1
    doc["payload"]["also_new"] = {"x": 1}
    assert decode(spec, json.dumps(doc).encode()).payload.queue_name == "gpu-a100"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(schema_version=2), "unsupported schema_version 2"),
        (lambda d: d.update(type="TaskEvent"), "unexpected type 'TaskEvent'"),
        (lambda d: d["payload"].update(input=[1, 2]), "payload.input"),
        (lambda d: d["payload"].pop("task_id"), "payload.task_id"),
    ],
)
def test_bad_messages_say_exactly_what_is_wrong(
    mutate: Callable[[dict[str, Any]], object], reason: str
) -> None:
    doc = json.loads((EXAMPLES / "EnqueueTask.v1.json").read_bytes())
    mutate(doc)
    with pytest.raises(SchemaError, match=reason.replace("(", r"\(")):
        decode(BY_TYPE["EnqueueTask"], json.dumps(doc).encode())


def test_non_json_and_tombstones_are_schema_errors() -> None:
    spec = BY_TYPE["EnqueueTask"]
    with pytest.raises(SchemaError, match="not an mlbus envelope"):
        decode(spec, b"\xff\xfe")
    with pytest.raises(SchemaError, match="tombstone"):
        decode(spec, None)
