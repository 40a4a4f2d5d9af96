"""`queue_name: "auto"` and the `GET /v1/resources` view, as pure functions on a fixed clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.heartbeat import GpuReading
from schemas.resources import QueueState, ResourceState
from services.ingest.auth import Principal
from services.ingest.queue_choice import candidates, choose_queue, expected_wait_s
from services.ingest.resources import Snapshot, privileged, summarise

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MAX_AGE = 180.0


def queue(name: str, **fields: Any) -> QueueState:
    return QueueState(queue_id=f"id-{name}", name=name, **{"length": 0, "at": NOW, **fields})


def states(*qs: QueueState) -> dict[str, QueueState]:
    return {q.name: q for q in qs}


def choose(allowed: list[str], *qs: QueueState) -> tuple[str, str]:
    choice = choose_queue("gpu-a100", allowed, states(*qs), NOW, MAX_AGE)
    return choice.queue, choice.reason


def test_candidates_are_the_default_first_then_the_allowed_ones_once() -> None:
    assert candidates("a", ["b", "a", "c", "b"]) == ["a", "b", "c"]


def test_a_free_gpu_wins_over_the_default_queue() -> None:
    busy = queue("gpu-a100", workers=["w1"], length=4, avg_wait_s=10, avg_length=2)
    free = queue("gpu-t4", workers=["w2"], idle_workers=["w2"], free_gpus=1, length=0)
    name, reason = choose(["gpu-t4"], busy, free)
    assert name == "gpu-t4"
    assert reason == "auto: 'gpu-t4' has 1 free GPU now"


def test_more_free_gpus_win_and_ties_keep_the_mappings_order() -> None:
    one = queue("gpu-a100", workers=["w1"], idle_workers=["w1"], free_gpus=1)
    two = queue("gpu-t4", workers=["w2"], idle_workers=["w2"], free_gpus=2)
    assert choose(["gpu-t4"], one, two)[0] == "gpu-t4"
    also_one = queue("gpu-t4", workers=["w2"], idle_workers=["w2"], free_gpus=1)
    assert choose(["gpu-t4"], one, also_one)[0] == "gpu-a100"


def test_an_idle_worker_comes_next_then_the_shortest_expected_wait() -> None:
    idle = queue("cpu", workers=["w3"], idle_workers=["w3"])
    slow = queue("gpu-a100", workers=["w1"], length=2, avg_wait_s=600, avg_length=2)
    fast = queue("gpu-t4", workers=["w2", "w4"], length=10, avg_wait_s=60, avg_length=10)
    assert choose(["gpu-t4", "cpu"], slow, fast, idle)[0] == "cpu"
    name, reason = choose(["gpu-t4"], slow, fast)
    # 11 tasks draining at 10 per minute start sooner than 3 draining at 2 per 10 minutes
    assert name == "gpu-t4"
    assert "shortest expected wait" in reason
    assert "10 waiting" in reason


def test_expected_wait_follows_littles_law_and_is_unknown_without_history() -> None:
    assert expected_wait_s(queue("q", length=3, avg_wait_s=20, avg_length=2)) == 40.0
    assert expected_wait_s(queue("q", length=0)) == 0.0
    assert math.isinf(expected_wait_s(queue("q", length=5)))


def test_a_queue_nobody_listens_on_comes_last() -> None:
    orphan = queue("gpu-t4", length=0)
    busy = queue("gpu-a100", workers=["w1"], length=50, avg_wait_s=3600, avg_length=50)
    assert choose(["gpu-t4"], orphan, busy)[0] == "gpu-a100"
    name, reason = choose(["gpu-t4"], orphan)
    assert name == "gpu-t4"
    assert "no worker listens" in reason


def test_no_recent_state_means_the_default_queue_and_says_so() -> None:
    name, reason = choose(["gpu-t4"])
    assert name == "gpu-a100"
    assert "default queue" in reason
    stale = queue("gpu-t4", free_gpus=3, at=NOW - timedelta(seconds=MAX_AGE + 1))
    assert choose(["gpu-t4"], stale)[0] == "gpu-a100"
    not_allowed = queue("gpu-secret", free_gpus=8, workers=["w"], idle_workers=["w"])
    assert choose(["gpu-t4"], not_allowed)[0] == "gpu-a100"


def machine(mid: str, online: bool, free: int, n_gpus: int) -> ResourceState:
    gpus = [GpuReading(index=i, uuid=f"{mid}-{i}", name="A100") for i in range(n_gpus)]
    return ResourceState(
        machine_id=mid,
        online=online,
        since=NOW,
        gpus=gpus,
        workers=[f"{mid}:gpu0"],
        ips=["10.0.0.11"],
        free_gpus=free,
        at=NOW,
    )


SNAP = Snapshot(
    machines=[machine("gpu-box-01", True, 1, 2), machine("gpu-box-02", False, 0, 2)],
    queues=states(
        queue(
            "gpu-a100",
            workers=["gpu-box-01:gpu0"],
            idle_workers=["gpu-box-01:gpu0"],
            free_gpus=1,
            length=1,
            oldest_wait_s=40.0,
            at=NOW - timedelta(seconds=5),
        )
    ),
)


def test_a_plain_user_gets_counts_and_queue_summaries_without_names() -> None:
    view = summarise(SNAP, detailed=False, now=NOW)
    assert (view.machines.online, view.machines.offline) == (1, 1)
    assert (view.gpus.total, view.gpus.free, view.gpus.busy) == (2, 1, 1)
    [a100] = view.queues
    assert (a100.name, a100.length, a100.workers, a100.has_free_gpu) == ("gpu-a100", 1, 1, True)
    assert a100.oldest_wait_s == 45.0  # the wait went on since the state was computed
    text = view.model_dump_json()
    assert "gpu-box" not in text
    assert "10.0.0" not in text


def test_admins_and_operators_also_see_machines_and_worker_ids() -> None:
    view = summarise(SNAP, detailed=True, now=NOW)
    assert view.machine_details is not None
    assert [m.machine_id for m in view.machine_details] == ["gpu-box-01", "gpu-box-02"]
    assert view.queues[0].worker_ids == ["gpu-box-01:gpu0"]
    operator = Principal("op", frozenset({"AreaManager"}), False, frozenset({"user", "operator"}))
    assert privileged(operator)
    assert privileged(Principal("root", frozenset({"RootAdmin"}), True))
    assert not privileged(Principal("alice", frozenset({"Manager"}), False))


def test_queue_states_too_old_to_trust_are_left_out_of_the_view() -> None:
    later = NOW + timedelta(seconds=MAX_AGE)
    assert summarise(SNAP, detailed=False, now=later, max_age_s=MAX_AGE).queues == []
    assert len(summarise(SNAP, detailed=False, now=NOW, max_age_s=MAX_AGE).queues) == 1
