"""`mlbus mappings|machines|endpoints list` print tables for people; `--json` the API's JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mlbus import cli
from mlbus.tables import render

TASK: dict[str, Any] = {
    "task_id": "tk_0123456789abcdefghij",
    "clearml_task_id": "a" * 32,
    "default_queue": "gpu-a100",
    "allowed_queues": ["gpu-t4", "cpu"],
    "description": "Parking occupancy\nforecast, trained nightly on the sensors of the city centre",
    "created_at": "2026-12-01T10:00:00Z",
}


def test_task_table_shortens_ids_and_keeps_one_line_per_mapping() -> None:
    lines = render("task-mappings", [TASK]).splitlines()
    heads = ["TASK", "ID", "DEFAULT", "QUEUE", "ALLOWED", "QUEUES", "DESCRIPTION", "CREATED"]
    assert lines[0].split() == heads
    assert len(lines) == 2
    row = lines[1]
    assert "tk_012345678…" in row
    assert TASK["task_id"] not in row
    assert "gpu-a100" in row
    assert "gpu-t4, cpu" in row
    assert "Parking occupancy forecast" in row  # the newline folded
    assert row.rstrip().endswith("2026-12-01")
    assert "a" * 32 not in row  # the real ClearML id is not a column


def test_columns_align_and_empty_lists_say_so() -> None:
    rows = [
        {"machine_id": "m1", "endpoint": "parking", "timeout_s": 30.0, "created_at": "2026-12-01"},
        {"machine_id": "m2", "endpoint": "a-much-longer-name", "timeout_s": 2.5},
    ]
    lines = render("endpoint-mappings", rows).splitlines()
    starts = {
        line.index(word)
        for line, word in zip(lines, ["ENDPOINT", "parking", "a-much"], strict=True)
    }
    assert len(starts) == 1
    assert "2.5" in lines[2]
    assert render("serving-machines", []) == "(none)"


@pytest.mark.parametrize(("flag", "table"), [([], True), (["--json"], False)])
def test_list_prints_a_table_or_json(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: list[str],
    table: bool,
) -> None:
    def fake_get(url: str, **_: Any) -> httpx.Response:
        assert url == "http://ingest.invalid/v1/admin/task-mappings"
        return httpx.Response(200, json=[TASK], request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    argv = ["mappings", "--url", "http://ingest.invalid", "--token", "t", "list", *flag]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    if table:
        assert out.startswith("TASK ID")
        assert TASK["task_id"] not in out
    else:
        assert json.loads(out) == [TASK]
