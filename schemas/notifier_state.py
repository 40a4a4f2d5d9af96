"""The notifier's own state (mlbus.state.notifier, compacted, one partition, key = state key).

The notifier writes one record per piece of state that changed and reads the topic to its end at
start-up, so that a restart keeps what it knew: the machines it expects heartbeats from, the
alerts pending, firing or resolving, the sustained-condition windows in progress, and the
notifications it decided to send but may not have published yet (the outbox). A tombstone (empty
value) deletes a key. Exactly one of the optional fields is set on a record.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Model
from schemas.notifications import Notification, Severity


class AlertStage(StrEnum):
    """Where one alert stands in the notifier's dedupe: told nobody yet, told, or ended."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVING = "resolving"
    RESOLVED = "resolved"


class MachineSeen(Model):
    """A machine the notifier expects heartbeats from."""

    machine_id: str = Field(description="Machine id.", examples=["gpu-box-01"])
    interval_s: float = Field(description="Its heartbeat interval.", examples=[5.0])
    last_seen: datetime = Field(description="When its last heartbeat arrived (notifier clock).")
    last_sent: datetime | None = Field(
        default=None, description="When the agent sent it (agent clock): older ones are old news."
    )


class AlertRecord(Model):
    """One alert (kind + subject) and how far the notifier got in telling about it."""

    kind: str = Field(description="Rule.", examples=["machine_offline"])
    subject: str = Field(description="Machine, GPU or queue.", examples=["gpu-box-01"])
    severity: Severity = Field(description="How urgent.", examples=["warning"])
    message: str = Field(description="Text of a firing notification about it alone.")
    stage: AlertStage = Field(description="pending, firing, resolving or resolved.")
    since: datetime = Field(description="When the condition started.")
    staged_at: datetime = Field(description="When it entered its stage (grouping waits on it).")
    notified_id: str | None = Field(default=None, description="Last notification about it.")
    notified_at: datetime | None = Field(default=None, description="When that was decided.")
    resolved_at: datetime | None = Field(default=None, description="When the condition ended.")


class ConditionWindow(Model):
    """A condition that must hold for a while before it fires (GPU busy for 60 s)."""

    kind: str = Field(description="Rule.", examples=["gpu_saturated"])
    subject: str = Field(description="GPU.", examples=["gpu-box-01/gpu0"])
    since: datetime = Field(description="When it started to hold (agent clock).")


class OutboxEntry(Model):
    """A notification decided but perhaps not published yet, with what it means for its alerts.

    Written before the notification is published and deleted after: one left at start-up is
    published again with the same id, so a crash in between loses nothing and repeats nothing
    but that id.
    """

    notification: Notification = Field(description="What is to be published.")
    alerts: list[AlertRecord] = Field(description="Its alerts, as they stand once it is out.")


class NotifierState(Model):
    """One record of the notifier's state; exactly one field is set."""

    machine: MachineSeen | None = Field(default=None, description="Key `machine:<id>`.")
    alert: AlertRecord | None = Field(default=None, description="Key `alert:<kind>:<subject>`.")
    window: ConditionWindow | None = Field(
        default=None, description="Key `window:<kind>:<subject>`."
    )
    outbox: OutboxEntry | None = Field(default=None, description="Key `outbox:<id>`.")
