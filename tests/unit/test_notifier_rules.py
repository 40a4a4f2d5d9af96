"""The notifier's rules: heartbeats, the offline timer, GPU conditions, queues and task events,
driven by a fake clock (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.heartbeat import AgentHeartbeat, GpuReading
from schemas.notifications import AlertStatus
from schemas.notifier_state import AlertStage
from schemas.resources import QueueState
from schemas.tasks import TaskEvent, TaskEventKind
from services.notifier.alerts import AlertBook, Grouping
from services.notifier.machines import MachineLimits, MachineRules
from services.notifier.queues import QueueLimits, QueueRules
from services.notifier.tasks import task_notification

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def gpu(util: float = 10, mem: float = 1000, temp: float = 50, index: int = 0) -> GpuReading:
    return GpuReading(
        index=index,
        uuid=f"GPU-{index}",
        name="A100",
        utilization_pct=util,
        memory_used_mb=mem,
        memory_total_mb=10_000,
        temperature_c=temp,
    )


def beat(machine: str = "gb1", *gpus: GpuReading, interval: float = 5.0) -> AgentHeartbeat:
    return AgentHeartbeat(machine_id=machine, interval_s=interval, gpus=list(gpus))


@pytest.fixture
def book() -> AlertBook:
    return AlertBook(Grouping(wait_s=0, max_wait_s=0))


@pytest.fixture
def rules(book: AlertBook) -> MachineRules:
    return MachineRules(MachineLimits(busy_for_s=60), book, started_at=at(0))


def stages(book: AlertBook) -> dict[str, AlertStage]:
    return {fp: r.stage for fp, r in book.alerts.items()}


def test_a_machine_goes_offline_after_three_missed_heartbeats_and_back(
    rules: MachineRules, book: AlertBook
) -> None:
    assert rules.heartbeat(beat(), at(0), at(0)) == ["machine:gb1"]
    assert rules.heartbeat(beat(), at(5), at(5)) == []  # nothing changed: nothing to write
    assert rules.tick(at(20)) == []  # 15 s silent: 3 intervals, not more
    assert rules.tick(at(20.1)) == ["machine:gb1", "alert:machine_offline:gb1"]
    assert rules.tick(at(30)) == []  # already pending
    [fired] = book.due(at(30))
    assert fired.notification.message.startswith("gb1 stopped answering: no heartbeat for 15 s")
    assert rules.heartbeat(beat(), at(40), at(40)) == ["alert:machine_offline:gb1"]
    [back] = book.due(at(40))
    assert back.notification.status is AlertStatus.RESOLVED


def test_silence_counts_from_start_up_at_the_earliest(book: AlertBook) -> None:
    rules = MachineRules(MachineLimits(), book, started_at=at(100))
    rules.heartbeat(beat(), at(0), at(0))
    assert rules.tick(at(110)) == []  # restarted at 100: heard nothing yet, but may still
    assert rules.tick(at(115.1)) == ["machine:gb1", "alert:machine_offline:gb1"]


def test_the_interval_is_each_machines_own(rules: MachineRules) -> None:
    rules.heartbeat(beat("fast", interval=1), at(0), at(0))
    rules.heartbeat(beat("slow", interval=10), at(0), at(0))
    assert rules.tick(at(3.5)) == ["machine:fast", "alert:machine_offline:fast"]
    assert rules.tick(at(31)) == ["machine:slow", "alert:machine_offline:slow"]


def test_a_heartbeat_heard_before_the_silence_does_not_bring_a_machine_back(
    rules: MachineRules, book: AlertBook
) -> None:
    rules.heartbeat(beat(), at(0), at(0))
    rules.tick(at(16))
    [_] = book.due(at(16))
    assert rules.heartbeat(beat(), at(0), at(17)) == []  # delivered again after a restart
    assert book.is_active("machine_offline", "gb1")
    assert rules.heartbeat(beat(), at(17), at(17)) == ["alert:machine_offline:gb1"]


def test_a_heartbeat_from_long_ago_tells_nothing(rules: MachineRules) -> None:
    assert rules.heartbeat(beat(), at(0), at(400)) == []
    assert rules.machines == {}


def test_a_gpu_is_saturated_only_after_the_window_and_free_again(
    rules: MachineRules, book: AlertBook
) -> None:
    assert rules.heartbeat(beat("gb1", gpu(95)), at(0), at(0)) == [
        "machine:gb1",
        "window:gpu_saturated:gb1/gpu0",
    ]
    assert rules.heartbeat(beat("gb1", gpu(99)), at(30), at(30)) == []
    assert rules.heartbeat(beat("gb1", gpu(97)), at(60), at(60)) == ["alert:gpu_saturated:gb1/gpu0"]
    [fired] = book.due(at(60))
    assert fired.notification.message == "gb1/gpu0: utilisation 97% for 60 s (above 90%)."
    assert rules.heartbeat(beat("gb1", gpu(40)), at(65), at(65)) == [
        "window:gpu_saturated:gb1/gpu0",
        "alert:gpu_saturated:gb1/gpu0",
    ]
    [free] = book.due(at(65))
    assert free.notification.message == "gb1/gpu0 is no longer saturated."


def test_a_dip_restarts_the_saturation_window(rules: MachineRules, book: AlertBook) -> None:
    rules.heartbeat(beat("gb1", gpu(95)), at(0), at(0))
    rules.heartbeat(beat("gb1", gpu(50)), at(30), at(30))
    rules.heartbeat(beat("gb1", gpu(95)), at(35), at(35))
    rules.heartbeat(beat("gb1", gpu(95)), at(70), at(70))
    assert book.alerts == {}
    rules.heartbeat(beat("gb1", gpu(95)), at(95), at(95))
    assert stages(book) == {"gpu_saturated:gb1/gpu0": AlertStage.PENDING}


def test_memory_and_temperature_fire_at_once_per_gpu(rules: MachineRules, book: AlertBook) -> None:
    rules.heartbeat(beat("gb1", gpu(mem=9600), gpu(temp=90, index=1)), at(0), at(0))
    assert stages(book) == {
        "gpu_memory_full:gb1/gpu0": AlertStage.PENDING,
        "gpu_hot:gb1/gpu1": AlertStage.PENDING,
    }
    [hot, full] = sorted(book.due(at(0)), key=lambda b: b.notification.kind)
    assert full.notification.message == "gb1/gpu0: 96% memory used (above 95)."
    assert hot.notification.message == "gb1/gpu1: 90 °C (above 85)."
    rules.heartbeat(beat("gb1", gpu(mem=100), gpu(temp=60, index=1)), at(5), at(5))
    assert {b.notification.status for b in book.due(at(5))} == {AlertStatus.RESOLVED}


def test_a_gpu_reading_nvml_could_not_make_changes_nothing(
    rules: MachineRules, book: AlertBook
) -> None:
    broken = GpuReading(index=0, uuid="GPU-0", name="A100", error="NVML_ERROR_GPU_IS_LOST")
    rules.heartbeat(beat("gb1", broken), at(0), at(0))
    assert book.alerts == {}


def queue(length: int, wait: float | None = None, workers: int = 1) -> QueueState:
    return QueueState(
        queue_id="q1",
        name="gpu-a100",
        length=length,
        oldest_wait_s=wait,
        workers=[f"w{i}" for i in range(workers)],
    )


def test_queue_backlog_by_length_or_by_wait_and_no_worker(book: AlertBook) -> None:
    rules = QueueRules(QueueLimits(max_length=5, max_wait_s=60), book)
    assert rules.state(queue(5, 60), at(0)) == []
    assert rules.state(queue(6, 1), at(1)) == ["alert:queue_backlog:gpu-a100"]
    assert rules.state(queue(7, 1), at(2)) == []
    [backed] = book.due(at(2))
    assert backed.notification.subject == "gpu-a100"
    assert rules.state(queue(1, 61), at(3)) == []  # still backing up: by its wait now
    assert rules.state(queue(1, 1, workers=0), at(4)) == [
        "alert:queue_backlog:gpu-a100",
        "alert:queue_no_worker:gpu-a100",
    ]
    assert stages(book) == {
        "queue_backlog:gpu-a100": AlertStage.RESOLVING,
        "queue_no_worker:gpu-a100": AlertStage.PENDING,
    }
    assert rules.state(queue(0, None, workers=0), at(5)) == ["alert:queue_no_worker:gpu-a100"]


def event(kind: TaskEventKind, user: str | None = "alice") -> TaskEvent:
    return TaskEvent(
        kind=kind,
        request_id="r" * 32,
        user=user,
        task_id="3b1f0e3c",
        queue_name="gpu-a100",
        message="The training run failed: OOM." if kind is TaskEventKind.FAILED else None,
        at=at(0),
    )


def test_a_users_task_events_are_notifications_for_that_user_alone() -> None:
    failed = task_notification(event(TaskEventKind.FAILED))
    assert failed is not None
    assert (failed.kind, failed.status, failed.user) == ("task_failed", "event", "alice")
    assert failed.message.endswith("failed on queue gpu-a100. The training run failed: OOM.")
    assert failed.subject == "r" * 32
    again = task_notification(event(TaskEventKind.FAILED))
    assert again is not None
    assert again.id == failed.id
    started = task_notification(event(TaskEventKind.STARTED))
    assert started is not None
    assert started.id != failed.id
    assert started.id[:12] == f"{int(at(0).timestamp() * 1000):012x}"  # time-ordered
    assert task_notification(event(TaskEventKind.ENQUEUED)) is None
    assert {n.kind for k in TaskEventKind if (n := task_notification(event(k))) is not None} == {
        "task_started",
        "task_completed",
        "task_failed",
        "task_stopped",
        "task_enqueue_failed",
    }


def test_a_machine_is_heard_at_its_heartbeats_own_time_when_the_clocks_agree() -> None:
    """Time a heartbeat waited in Kafka or in the consumer's backlog must not delay its machine's
    offline alert; a heartbeat from a clock off by more than an interval counts on arrival."""
    from datetime import UTC, datetime, timedelta

    from services.notifier.machines import heard_at

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert heard_at(now - timedelta(seconds=2), now, 5.0) == now - timedelta(seconds=2)
    assert heard_at(now + timedelta(seconds=1), now, 5.0) == now  # never in our future
    assert heard_at(now - timedelta(seconds=30), now, 5.0) == now  # skewed clock: arrival
    assert heard_at(now + timedelta(seconds=30), now, 5.0) == now


def test_one_heartbeat_from_a_clock_running_ahead_does_not_silence_the_machine(
    rules: MachineRules,
) -> None:
    """Found in review: a heartbeat dated an hour ahead made every later true one look old."""
    rules.heartbeat(beat(), at(3600), at(0))  # the agent's clock an hour ahead, once
    for k in range(1, 5):  # then true heartbeats every 5 s
        rules.heartbeat(beat(), at(5 * k), at(5 * k))
    assert rules.tick(at(21)) == []  # heard 1 s ago: not offline


def test_old_queue_states_replayed_from_the_compacted_topic_change_nothing(book: AlertBook) -> None:
    """Found in review: a new consumer group replays every queue state ever kept, deleted
    queues included; only fresh ones may raise alerts."""
    rules = QueueRules(QueueLimits(max_length=2), book)
    old = QueueState(queue_id="q1", name="gone", length=50, at=at(0))
    assert rules.state(old, at(600)) == []
    fresh = QueueState(queue_id="q2", name="busy", length=50, at=at(599))
    assert rules.state(fresh, at(600)) == ["alert:queue_backlog:busy", "alert:queue_no_worker:busy"]
