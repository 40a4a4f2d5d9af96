"""Log events (mlbus.logs): one record per request step, for the logger and read models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import JSONValue, Model, utcnow


class RequestLogged(Model):
    """A step of a request reached a state; the logger folds these into read models."""

    request_id: str = Field(description="The request.", examples=["5f0c8a9e"])
    path: Literal["enqueue", "ondemand"] = Field(
        description="Which path the request took.", examples=["enqueue"]
    )
    status: str = Field(description="State reached.", examples=["queued"])
    user: str | None = Field(default=None, description="Requester.", examples=["alice"])
    target: str | None = Field(default=None, description="Opaque task or endpoint.")
    latency_ms: float | None = Field(default=None, description="Time since accepted.")
    details: dict[str, JSONValue] = Field(default_factory=dict, description="Step details.")
    at: datetime = Field(default_factory=utcnow, description="When (UTC).")
    accepted_at: datetime | None = Field(
        default=None,
        description="When ingest accepted the request (UTC): the log's sort key.",
        examples=["2026-11-26T11:59:59.958Z"],
    )
