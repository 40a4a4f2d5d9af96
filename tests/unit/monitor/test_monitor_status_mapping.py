"""ClearML statuses → request statuses, and the words a flow author reads on failure."""

from __future__ import annotations

import pytest

from schemas.tasks import TaskEventKind
from services.monitor.lifecycle import (
    Change,
    Watched,
    event_for,
    human_message,
    observe,
    request_status,
)


@pytest.mark.parametrize(
    ("clearml", "expected"),
    [
        ("queued", "queued"),
        ("in_progress", "running"),
        ("completed", "completed"),
        ("published", "completed"),
        ("closed", "completed"),
        ("failed", "failed"),
        ("stopped", "stopped"),
        ("created", None),
        ("unknown", None),
        ("publishing", None),
        (None, None),
    ],
)
def test_clearml_status_maps_to_request_status(clearml: str | None, expected: str | None) -> None:
    assert request_status(clearml) == expected


def test_failure_message_quotes_clearml_and_its_reason() -> None:
    message = human_message("failed", "CUDA out of memory", "worker execution exit code 1")
    assert message == "The training run failed: CUDA out of memory (worker execution exit code 1)."


def test_stop_message_and_missing_reasons() -> None:
    assert human_message("stopped", "Aborted by gpu-box-01", "") == (
        "The training run was stopped: Aborted by gpu-box-01."
    )
    assert human_message("failed", "", "") == (
        "The training run failed on the cluster; ClearML gave no reason."
    )
    assert human_message("completed", "Completed by gpu-box-01", "") is None
    assert human_message("running", "Changed by clearml-agent", "worker started") is None


def _watched(status: str = "queued") -> Watched:
    return Watched("r1", "c1", status, "alice", "t1", "gpu-a100")


def test_observe_reports_only_news() -> None:
    watched = _watched("running")
    assert observe(watched, {"id": "c1", "status": "in_progress"}) is None
    assert observe(watched, {"id": "c1", "status": "created"}) is None
    change = observe(watched, {"id": "c1", "status": "failed", "status_message": "boom"})
    assert change == Change("failed", "The training run failed: boom.")


def test_events_carry_the_request_and_its_task() -> None:
    event = event_for(_watched(), Change("running", None))
    assert event is not None
    assert event.kind is TaskEventKind.STARTED
    assert (event.request_id, event.user, event.task_id, event.clone_id, event.queue_name) == (
        "r1",
        "alice",
        "t1",
        "c1",
        "gpu-a100",
    )
    assert event_for(_watched("running"), Change("queued", None)) is None
