"""Every topic's payload schema is snapshotted per major version, and a change that would keep a
reader from reading messages of the same version fails here (see schemas/snapshots)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from schemas import snapshots
from schemas.base import Model
from schemas.tasks import TaskEvent


def test_every_topic_matches_its_snapshot() -> None:
    for spec in snapshots.TOPICS:
        path = snapshots.path_of(spec)
        assert path.exists(), f"no snapshot of {path.name}: run python -m schemas.snapshots"
        old = json.loads(path.read_text())
        assert snapshots.breaks(old, snapshots.schema_of(spec)) == [], path.name


def _schema(model: type[Model]) -> dict[str, Any]:
    return model.model_json_schema()


class Before(Model):
    kind: str
    count: int | None = None
    tags: list[str] = Field(default_factory=list)


def test_a_new_optional_field_and_new_words_are_compatible() -> None:
    class After(Model):
        kind: str = Field(description="Now described.", examples=["x"])
        count: int | None = None
        tags: list[str] = Field(default_factory=list)
        note: str | None = None

    assert snapshots.breaks(_schema(Before), _schema(After)) == []


def test_a_new_required_field_breaks() -> None:
    class After(Before):
        owner: str

    assert snapshots.breaks(_schema(Before), _schema(After)) == [
        "$.owner: required now, absent from old messages"
    ]


def test_a_dropped_required_field_and_a_narrowed_type_break() -> None:
    class After(Model):
        count: int
        tags: list[int] = Field(default_factory=list)

    found = snapshots.breaks(_schema(Before), _schema(After))
    assert "$.kind: required by old readers, no longer written" in found
    assert "$.count: required now, absent from old messages" in found
    assert any(f.startswith("$.count: {'type': 'null'} no longer accepted") for f in found)
    assert any(f.startswith("$.tags[items]") for f in found)


def test_an_enum_may_grow_but_not_shrink() -> None:
    old = _schema(TaskEvent)
    grown = json.loads(json.dumps(old))
    grown["$defs"]["TaskEventKind"]["enum"].append("TaskArchived")
    assert snapshots.breaks(old, grown) == []
    shrunk = json.loads(json.dumps(old))
    shrunk["$defs"]["TaskEventKind"]["enum"].remove("TaskStopped")
    assert snapshots.breaks(old, shrunk) == ["$.kind: value 'TaskStopped' no longer allowed"]
