"""Resource state: per machine (mlbus.state.resources) and per queue (mlbus.state.queues), both
compacted, so a new reader gets the latest state of everything by reading the topic from the start.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import Model, utcnow
from schemas.heartbeat import GpuReading


class ResourceState(Model):
    """The joined view of one machine: ClearML workers plus GPU heartbeats."""

    machine_id: str = Field(description="Machine id.", examples=["gpu-box-01"])
    online: bool = Field(description="Heartbeats or worker reports are recent.", examples=[True])
    since: datetime = Field(description="When `online` last changed (UTC).")
    gpus: list[GpuReading] = Field(default_factory=list, description="Latest GPU readings.")
    workers: list[str] = Field(default_factory=list, description="ClearML worker ids on it.")
    queues: list[str] = Field(default_factory=list, description="Queues its workers serve.")
    current_tasks: list[str] = Field(default_factory=list, description="Running task ids.")
    last_heartbeat: datetime | None = Field(
        default=None, description="When the GPU agent last reported (UTC)."
    )
    cpu_pct: float | None = Field(default=None, description="Host CPU %.", examples=[23.5])
    at: datetime = Field(default_factory=utcnow, description="When this state was computed.")
    free_gpus: int = Field(
        default=0,
        description="GPUs free by the monitor's rule (low load and memory); 0 when offline.",
        examples=[1],
        ge=0,
    )
    ips: list[str] = Field(
        default_factory=list,
        description="Addresses its workers report from (internal).",
        examples=[["10.0.0.11"]],
    )
    last_worker_report: datetime | None = Field(
        default=None, description="When one of its ClearML workers last reported (UTC)."
    )


class QueueState(Model):
    """One ClearML queue: how long it is, who listens, and whether a GPU is free behind it."""

    queue_id: str = Field(description="ClearML queue id.", examples=["2c9f4a7b1e3d"])
    name: str = Field(description="Queue name.", examples=["gpu-a100"])
    length: int = Field(description="Tasks waiting.", examples=[3], ge=0)
    oldest_wait_s: float | None = Field(
        default=None, description="Seconds the oldest entry has waited.", examples=[42.0]
    )
    avg_wait_s: float | None = Field(
        default=None,
        description="Average waiting time over the last minutes (queues.get_queue_metrics).",
        examples=[12.5],
    )
    workers: list[str] = Field(default_factory=list, description="Worker ids listening on it.")
    idle_workers: list[str] = Field(
        default_factory=list, description="Listening workers that run no task now."
    )
    free_gpus: int = Field(
        default=0, description="Free GPUs on the online machines of its idle workers.", ge=0
    )
    at: datetime = Field(default_factory=utcnow, description="When this state was computed.")
    avg_length: float | None = Field(
        default=None,
        description="Average length over the same window; with `avg_wait_s` it gives the rate "
        "at which the queue drains (Little's law).",
        examples=[2.5],
    )
