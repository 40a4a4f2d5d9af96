"""The facts a rebuild reads from a raw log fold into the same read models as the messages the
logger was sent for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.logs import RequestLogged
from schemas.tasks import TaskEvent, TaskEventKind
from services.logger.fold import Fact, Writes, effects
from services.logger.handlers import fact_of_log, fact_of_task
from services.logger.rebuild import enqueue_facts, ondemand_facts

AT = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
TASK = "t" * 32


def _history(*steps: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"status": s, "at": AT + timedelta(seconds=t)} for s, t in steps]


def _folded(facts: list[Fact], raw: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Every document write, once per key (the first fact of a key wins, as claims do)."""
    writes, seen = Writes(), set()
    for fact in facts:
        if fact.key not in seen:
            seen.add(fact.key)
            effects(fact, raw, writes)
    return {
        **{k: ("replace", v) for k, v in writes.replaces.items()},
        **{k: ("update", u.spec(), u.upsert) for k, u in writes.updates.items()},
    }


def test_a_completed_request_folds_as_its_messages_did() -> None:
    raw = {
        "_id": "r1",
        "user": "alice",
        "task_id": TASK,
        "queue": "gpu-a100",
        "status": "completed",
        "accepted_at": AT,
        "latency_ms": {"total": 40.0, "clone": 20.0},
        "history": _history(
            ("accepted", 0), ("cloned", 0.02), ("queued", 0.04), ("running", 5), ("completed", 9)
        ),
    }
    sent = [
        fact_of_log(
            RequestLogged(
                request_id="r1",
                path="enqueue",
                status="queued",
                user="alice",
                target=TASK,
                latency_ms=41.0,
                accepted_at=AT,
                at=AT + timedelta(seconds=0.04),
            )
        ),
        *(
            fact_of_task(TaskEvent(kind=kind, request_id="r1", user="alice", task_id=TASK))
            for kind in (
                TaskEventKind.ENQUEUED,
                TaskEventKind.STARTED,
                TaskEventKind.COMPLETED,
            )
        ),
    ]
    rebuilt = enqueue_facts(raw)
    assert [(f.status, f.counted, f.error) for f in rebuilt] == [
        ("queued", True, False),
        ("running", False, False),
        ("completed", False, False),
    ]
    assert _folded(rebuilt, raw) == _folded(sent, raw)


def test_a_failed_enqueue_is_one_decided_error_with_its_latency() -> None:
    raw = {
        "_id": "r2",
        "user": "bob",
        "task_id": TASK,
        "status": "failed",
        "error": "The queue does not exist.",
        "accepted_at": AT,
        "latency_ms": {},
        "history": _history(("accepted", 0), ("cloned", 0.02), ("failed", 0.5)),
    }
    sent = fact_of_log(
        RequestLogged(
            request_id="r2",
            path="enqueue",
            status="failed",
            user="bob",
            target=TASK,
            latency_ms=500.0,
            accepted_at=AT,
            details={"message": "The queue does not exist."},
        )
    )
    [fact] = enqueue_facts(raw)
    assert (fact.status, fact.counted, fact.error, fact.latency_ms) == ("failed", True, True, 500.0)
    assert _folded([fact], raw) == _folded([sent], raw)


def test_a_run_that_failed_after_queued_is_not_an_enqueue_error() -> None:
    raw = {
        "_id": "r3",
        "status": "failed",
        "accepted_at": AT,
        "history": _history(("accepted", 0), ("queued", 1), ("running", 2), ("failed", 3)),
    }
    facts = {f.status: (f.counted, f.error) for f in enqueue_facts(raw)}
    assert facts == {"queued": (True, False), "running": (False, False), "failed": (False, False)}


def test_a_request_only_accepted_has_no_fact_yet_and_a_current_status_is_never_lost() -> None:
    accepted = {"_id": "r4", "status": "accepted", "accepted_at": AT, "history": []}
    assert enqueue_facts(accepted) == []
    no_history = {"_id": "r5", "status": "queued", "accepted_at": AT, "updated_at": AT}
    assert [(f.status, f.counted) for f in enqueue_facts(no_history)] == [("queued", True)]


def test_an_on_demand_call_is_one_fact_its_outcome() -> None:
    raw = {
        "_id": "c1",
        "user": "carol",
        "machine_id": "m1",
        "endpoint": "parking",
        "status": "model_error",
        "created_at": AT,
        "finished_at": AT + timedelta(milliseconds=12),
        "latency_ms": {"total": 12.0},
    }
    sent = fact_of_log(
        RequestLogged(
            request_id="c1",
            path="ondemand",
            status="model_error",
            user="carol",
            target="m1/parking",
            latency_ms=12.0,
            accepted_at=AT,
        )
    )
    [fact] = ondemand_facts(raw)
    assert (fact.status, fact.counted, fact.error) == ("model_error", True, True)
    assert _folded([fact], raw) == _folded([sent], raw)
