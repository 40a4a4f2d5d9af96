"""Dedupe and grouping of alerts, after Prometheus Alertmanager, as pure state: no I/O, and the
caller says what time it is (unit tests drive it with a fake clock).

An alert is a rule's condition on one subject (`machine_offline` on `gpu-box-01`); its
fingerprint is `<kind>:<subject>`. It moves through stages:

    (none) --activate--> PENDING --sent--> FIRING --deactivate--> RESOLVING --sent--> (none)
    PENDING --deactivate--> (none)          nobody was told, so nobody is told it ended
    RESOLVING --activate--> FIRING          it came back before the resolve went out

so each condition fires once and resolves once however many heartbeats repeat it. Grouping:
the pending alerts of one kind go out together, in one notification listing their subjects,
once none has joined for `group_wait_s` (a storm keeps the group open while it lasts) or the
first has waited `group_max_wait_s`; resolves likewise. Alertmanager's group_wait and
group_interval become this one quiet-period rule: at this scale a group is one kind, and the
operator should hear within seconds. A still-firing alert is repeated after
`repeat_interval_s` (Alertmanager's repeat_interval), grouped with those of its kind that fired
with it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.notifications import AlertStatus, Notification, Severity
from schemas.notifier_state import AlertRecord, AlertStage
from services.notifier.kinds import KINDS, Kind

_URGENCY = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]


def fingerprint(kind: str, subject: str) -> str:
    """The stable key of one alert."""
    return f"{kind}:{subject}"


@dataclass(frozen=True)
class Condition:
    """A rule's finding: `kind` holds on `subject`; `message` says so for that subject alone."""

    kind: Kind
    subject: str
    message: str


@dataclass(frozen=True)
class Batch:
    """One notification to send and its alerts' records once it is out."""

    notification: Notification
    alerts: list[AlertRecord]


@dataclass(frozen=True)
class Grouping:
    """The windows of grouping and repetition, in seconds."""

    wait_s: float = 1.0
    max_wait_s: float = 10.0
    max_size: int = 500
    repeat_s: float = 4 * 3600.0


class AlertBook:
    """Every alert not yet resolved and told, by fingerprint."""

    def __init__(self, grouping: Grouping) -> None:
        self._g = grouping
        self.alerts: dict[str, AlertRecord] = {}

    def is_active(self, kind: str, subject: str) -> bool:
        """Whether the condition holds as far as the book knows (pending or firing)."""
        record = self.alerts.get(fingerprint(kind, subject))
        return record is not None and record.stage in (AlertStage.PENDING, AlertStage.FIRING)

    def activate(self, condition: Condition, now: datetime) -> str | None:
        """The condition holds; returns the fingerprint when the book changed."""
        fp = fingerprint(condition.kind.name, condition.subject)
        record = self.alerts.get(fp)
        if record is None:
            self.alerts[fp] = AlertRecord(
                kind=condition.kind.name,
                subject=condition.subject,
                severity=condition.kind.severity,
                message=condition.message,
                stage=AlertStage.PENDING,
                since=now,
                staged_at=now,
            )
            return fp
        if record.stage is AlertStage.RESOLVING:  # back before its resolve went out
            self.alerts[fp] = record.model_copy(
                update={"stage": AlertStage.FIRING, "resolved_at": None}
            )
            return fp
        return None

    def deactivate(self, kind: str, subject: str, now: datetime) -> str | None:
        """The condition no longer holds; returns the fingerprint when the book changed."""
        fp = fingerprint(kind, subject)
        record = self.alerts.get(fp)
        if record is None or record.stage is AlertStage.RESOLVING:
            return None
        if record.stage is AlertStage.PENDING:  # never told: nothing to resolve
            del self.alerts[fp]
        else:
            self.alerts[fp] = record.model_copy(
                update={"stage": AlertStage.RESOLVING, "staged_at": now, "resolved_at": now}
            )
        return fp

    def restore(self, record: AlertRecord) -> None:
        """Take a record read back from the state topic (RESOLVED: forget it)."""
        fp = fingerprint(record.kind, record.subject)
        if record.stage is AlertStage.RESOLVED:
            self.alerts.pop(fp, None)
        else:
            self.alerts[fp] = record

    def forget(self, fp: str) -> None:
        """Drop an alert (its state record was deleted)."""
        self.alerts.pop(fp, None)

    def firing(self) -> dict[str, int]:
        """Alerts told and not resolved, by kind."""
        counts: dict[str, int] = defaultdict(int)
        for record in self.alerts.values():
            if record.stage in (AlertStage.FIRING, AlertStage.RESOLVING):
                counts[record.kind] += 1
        return counts

    def due(self, now: datetime) -> list[Batch]:
        """The notifications to send now; the book moves on as if they were sent."""
        batches: list[Batch] = []
        for stage in (AlertStage.PENDING, AlertStage.RESOLVING):
            for group in self._groups(stage):
                if self._ready(group, now):
                    batches.extend(self._send(group, stage, now, repeat=False))
        repeat_before = now - timedelta(seconds=self._g.repeat_s)
        stale = (
            r
            for r in self.alerts.values()
            if r.stage is AlertStage.FIRING and r.notified_at and r.notified_at <= repeat_before
        )
        for group in _by_kind(stale).values():
            batches.extend(self._send(group, AlertStage.FIRING, now, repeat=True))
        return batches

    def _groups(self, stage: AlertStage) -> Iterable[list[AlertRecord]]:
        return _by_kind(r for r in self.alerts.values() if r.stage is stage).values()

    def _ready(self, group: list[AlertRecord], now: datetime) -> bool:
        newest = max(r.staged_at for r in group)
        oldest = min(r.staged_at for r in group)
        return (now - newest).total_seconds() >= self._g.wait_s or (
            now - oldest
        ).total_seconds() >= self._g.max_wait_s

    def _send(
        self, group: list[AlertRecord], stage: AlertStage, now: datetime, *, repeat: bool
    ) -> list[Batch]:
        group = sorted(group, key=lambda r: r.subject)
        batches = []
        for start in range(0, len(group), self._g.max_size):
            chunk = group[start : start + self._g.max_size]
            notification = _notification(chunk, stage is AlertStage.RESOLVING, repeat=repeat)
            after = [self._sent(r, notification.id, now) for r in chunk]
            batches.append(Batch(notification, after))
        return batches

    def _sent(self, record: AlertRecord, notified_id: str, now: datetime) -> AlertRecord:
        fp = fingerprint(record.kind, record.subject)
        told = {"notified_id": notified_id, "notified_at": now, "staged_at": now}
        if record.stage is AlertStage.RESOLVING:
            del self.alerts[fp]
            return record.model_copy(update={**told, "stage": AlertStage.RESOLVED})
        after = record.model_copy(update={**told, "stage": AlertStage.FIRING})
        self.alerts[fp] = after
        return after


def _by_kind(records: Iterable[AlertRecord]) -> dict[str, list[AlertRecord]]:
    groups: dict[str, list[AlertRecord]] = defaultdict(list)
    for record in records:
        groups[record.kind].append(record)
    return groups


def kind_of(name: str, severity: Severity) -> Kind:
    """The catalogue's kind, or plain words for one it does not know (a newer notifier's)."""
    return KINDS.get(name) or Kind(name, severity, "subjects", "fired", "resolved", "resolved")


def _notification(group: list[AlertRecord], resolved: bool, *, repeat: bool) -> Notification:
    first = group[0]
    severity = max((r.severity for r in group), key=_URGENCY.index)
    kind = kind_of(first.kind, severity)
    subjects = [r.subject for r in group]
    many = len(group) > 1
    if many:
        digest = hashlib.sha256("\n".join(subjects).encode()).hexdigest()[:12]
        fp = f"{first.kind}:group:{digest}"
    else:
        fp = fingerprint(first.kind, first.subject)
    if resolved:
        message = kind.resolved_text(subjects)
    else:
        message = kind.firing_text(subjects) if many else first.message
    return Notification(
        kind=first.kind,
        severity=severity,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        subject=f"{len(group)} {kind.noun}" if many else first.subject,
        subjects=subjects if many else [],
        fingerprint=fp,
        repeat=repeat,
        message=message,
        first_seen=min(r.since for r in group),
        resolved_at=max((r.resolved_at for r in group if r.resolved_at), default=None)
        if resolved
        else None,
    )
