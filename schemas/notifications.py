"""Notifications (mlbus.notifications): what operators and users are told."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Model, utcnow


class Severity(StrEnum):
    """How urgent."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Notification(Model):
    """A condition that started or ended, or a fact a user asked to hear about."""

    kind: str = Field(description="Rule that fired.", examples=["machine_offline"])
    severity: Severity = Field(description="How urgent.", examples=["warning"])
    subject: str = Field(description="Machine, GPU, queue, endpoint or request.", examples=["gb1"])
    message: str = Field(description="Human text.", examples=["gpu-box-01 stopped answering."])
    user: str | None = Field(default=None, description="Only this user sees it (None: operators).")
    first_seen: datetime = Field(default_factory=utcnow, description="When it started.")
    resolved_at: datetime | None = Field(default=None, description="When it ended.")
