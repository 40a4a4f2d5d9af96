"""A completed run's notification tells its requester what the run produced."""

from __future__ import annotations

from schemas.tasks import ResultFile, TaskEvent, TaskEventKind, TaskResults
from services.notifier.tasks import task_notification


def test_the_completion_notification_carries_and_says_the_results() -> None:
    results = TaskResults(
        scalars={f"Summary/m{i}": i / 10 for i in range(7)},
        artifacts=[ResultFile(name="predictions", type="text/csv", size=2048)],
        models=[ResultFile(name="model", type="PyTorch")],
    )
    event = TaskEvent(
        kind=TaskEventKind.COMPLETED, request_id="r1", user="alice", task_id="t1", results=results
    )
    notification = task_notification(event)
    assert notification is not None
    assert notification.results == results
    assert notification.user == "alice"
    assert "Summary/m0 = 0, Summary/m1 = 0.1" in notification.message
    assert "and 2 more" in notification.message
    assert "Artifacts: predictions (2.0 KiB)" in notification.message
    assert "Models: model." in notification.message


def test_a_failure_notification_has_no_results() -> None:
    event = TaskEvent(kind=TaskEventKind.FAILED, request_id="r1", task_id="t1", message="boom")
    notification = task_notification(event)
    assert notification is not None
    assert notification.results is None
    assert "Last values" not in notification.message
