"""The notifier's dedupe and grouping (the alert book), driven by a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.notifications import AlertStatus
from schemas.notifier_state import AlertStage
from services.notifier.alerts import AlertBook, Batch, Condition, Grouping
from services.notifier.kinds import GPU_HOT, MACHINE_OFFLINE

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def book(**grouping: float) -> AlertBook:
    return AlertBook(Grouping(**{"wait_s": 1.0, "max_wait_s": 10.0, **grouping}))  # type: ignore[arg-type]


def offline(machine: str) -> Condition:
    return Condition(MACHINE_OFFLINE, machine, f"{machine} stopped answering.")


def drain(alerts: AlertBook, until: float, step: float = 0.1) -> list[Batch]:
    """Every batch due while the clock runs from 0 to `until`."""
    out, t = [], 0.0
    while t <= until:
        out += alerts.due(at(t))
        t = round(t + step, 3)
    return out


def test_a_condition_fires_once_however_often_it_is_seen_and_resolves_once() -> None:
    alerts = book()
    for t in range(5):
        alerts.activate(offline("gb1"), at(t / 10))
    [fired] = drain(alerts, 3)
    n = fired.notification
    assert (n.kind, n.status, n.subject, n.subjects) == ("machine_offline", "firing", "gb1", [])
    assert n.fingerprint == "machine_offline:gb1"
    assert n.message == "gb1 stopped answering."
    for t in range(5):
        alerts.activate(offline("gb1"), at(4 + t))
    assert alerts.due(at(9)) == []
    alerts.deactivate("machine_offline", "gb1", at(10))
    alerts.deactivate("machine_offline", "gb1", at(10.2))
    [resolved] = alerts.due(at(11.1))
    assert resolved.notification.status is AlertStatus.RESOLVED
    assert resolved.notification.fingerprint == n.fingerprint
    assert resolved.notification.resolved_at == at(10)
    assert resolved.notification.message == "gb1 answers again."
    assert alerts.alerts == {}
    assert alerts.due(at(100)) == []


def test_a_storm_is_one_notification_listing_every_subject() -> None:
    alerts = book()
    for i in range(100):  # staggered over 2 s: the group stays open while alerts keep coming
        alerts.activate(offline(f"m{i:03d}"), at(i * 0.02))
    assert alerts.due(at(2.5)) == []
    [storm] = alerts.due(at(3.0))
    n = storm.notification
    assert n.subject == "100 machines"
    assert n.subjects == [f"m{i:03d}" for i in range(100)]
    assert n.message.startswith("100 machines stopped answering: m000, m001,")
    assert n.message.endswith("and 90 more.")
    assert n.fingerprint is not None
    assert n.fingerprint.startswith("machine_offline:group:")
    assert all(r.stage is AlertStage.FIRING and r.notified_id == n.id for r in storm.alerts)
    for i in range(100):
        alerts.deactivate("machine_offline", f"m{i:03d}", at(5))
    [back] = alerts.due(at(6))
    assert back.notification.status is AlertStatus.RESOLVED
    assert back.notification.subjects == n.subjects
    assert back.notification.message.startswith("100 machines answer again: ")


def test_kinds_are_grouped_apart_and_a_group_is_capped() -> None:
    alerts = book(max_size=40)
    for i in range(100):
        alerts.activate(offline(f"m{i:03d}"), at(0))
    alerts.activate(Condition(GPU_HOT, "m001/gpu0", "m001/gpu0: 90 °C"), at(0))
    batches = alerts.due(at(1))
    sizes = sorted((b.notification.kind, len(b.alerts)) for b in batches)
    assert sizes == [
        ("gpu_hot", 1),
        ("machine_offline", 20),
        ("machine_offline", 40),
        ("machine_offline", 40),
    ]
    hot = next(b.notification for b in batches if b.notification.kind == "gpu_hot")
    assert hot.severity == "critical"


def test_an_endless_trickle_is_sent_after_the_longest_wait() -> None:
    alerts = book(wait_s=1.0, max_wait_s=3.0)
    sent: list[Batch] = []
    for i in range(50):  # a new one every 0.5 s: never quiet for 1 s
        alerts.activate(offline(f"m{i:02d}"), at(i * 0.5))
        sent += alerts.due(at(i * 0.5))
    assert sent, "a group must not wait forever"
    assert len(sent[0].alerts) == 7  # 0 s .. 3 s
    assert all(len(b.alerts) <= 7 for b in sent)


def test_a_condition_that_ends_before_anyone_was_told_is_never_told() -> None:
    alerts = book()
    alerts.activate(offline("gb1"), at(0))
    alerts.deactivate("machine_offline", "gb1", at(0.5))
    assert drain(alerts, 5) == []


def test_a_condition_back_before_its_resolve_went_out_stays_firing_untold() -> None:
    alerts = book()
    alerts.activate(offline("gb1"), at(0))
    [_] = alerts.due(at(1))
    alerts.deactivate("machine_offline", "gb1", at(2))
    alerts.activate(offline("gb1"), at(2.5))
    assert alerts.due(at(5)) == []
    assert alerts.is_active("machine_offline", "gb1")


def test_a_still_firing_alert_repeats_after_the_repeat_interval_only() -> None:
    alerts = book(repeat_s=3600)
    alerts.activate(offline("gb1"), at(0))
    alerts.activate(offline("gb2"), at(0.1))
    [first] = alerts.due(at(1.1))
    assert alerts.due(at(3600)) == []
    [again] = alerts.due(at(3601.2))
    assert again.notification.repeat
    assert again.notification.status is AlertStatus.FIRING
    assert again.notification.subjects == ["gb1", "gb2"]
    assert again.notification.id != first.notification.id
    assert alerts.due(at(3602)) == []
    [_] = alerts.due(at(7201.3))


def test_restored_records_carry_on_where_they_were() -> None:
    before = book()
    before.activate(offline("gb1"), at(0))
    [fired] = before.due(at(1))
    after = book()
    for record in fired.alerts:
        after.restore(record)
    after.activate(offline("gb1"), at(2))
    assert after.due(at(5)) == []  # not fired again
    after.deactivate("machine_offline", "gb1", at(6))
    [resolved] = after.due(at(7))
    assert resolved.notification.status is AlertStatus.RESOLVED
