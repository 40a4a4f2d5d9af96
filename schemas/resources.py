"""Resource state per machine (mlbus.state.resources, compacted; key = machine id)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import Model
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
