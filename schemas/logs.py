"""Log events (mlbus.logs): one record per request step, for the logger and read models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import JSONValue, Model, utcnow


class OnDemandRecord(Model):
    """An on-demand call's raw log (`ondemand_logs`, less the request id, user and status that
    RequestLogged carries): the router publishes it with the call's reply, and the logger, its
    one writer, stores it. Published on the bus, it outlives the router that made it."""

    machine_id: str = Field(description="Opaque serving machine id.", examples=["m-7c1d"])
    endpoint: str = Field(description="Endpoint called.", examples=["parking_free_slots"])
    version: str | None = Field(default=None, description="Endpoint version.", examples=["2"])
    serving_task_id: str | None = Field(
        default=None, description="The ClearML Serving task (admin only).", examples=["5e7f0c1d"]
    )
    replica_url: str | None = Field(
        default=None, description="Replica called (admin only).", examples=["http://10.0.0.5:8080"]
    )
    http_status: int = Field(description="HTTP status of the reply.", examples=[200])
    error_code: str | None = Field(default=None, description="Stable error code.", examples=[None])
    error: str | None = Field(default=None, description="Error message.", examples=[None])
    latency_ms: dict[str, float | None] = Field(
        default_factory=dict,
        description="bus (accepted to consumed), model (the model's answer), total.",
        examples=[{"bus": 1.2, "model": 3.4, "total": 6.1}],
    )
    created_at: datetime = Field(description="When ingest accepted the call (UTC).")
    finished_at: datetime = Field(description="When the router had its outcome (UTC).")


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
    record: OnDemandRecord | None = Field(
        default=None,
        description="On-demand: the call's raw log, which the logger writes to ondemand_logs.",
    )
