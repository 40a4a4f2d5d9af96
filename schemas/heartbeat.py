"""GPU agent heartbeats (mlbus.heartbeats), keyed by machine id."""

from __future__ import annotations

from pydantic import Field

from schemas.base import Model


class GpuProcess(Model):
    """A process using a GPU."""

    pid: int = Field(description="Process id.", examples=[4242])
    used_memory_mb: float | None = Field(default=None, description="GPU memory.", examples=[812.0])


class GpuReading(Model):
    """One GPU at one instant, as NVML reports it; a field NVML could not read is None."""

    index: int = Field(description="NVML index.", examples=[0])
    uuid: str = Field(description="GPU UUID.", examples=["GPU-8e6f2c1a"])
    name: str = Field(description="Product name.", examples=["NVIDIA A100-SXM4-40GB"])
    utilization_pct: float | None = Field(default=None, description="GPU busy %.", examples=[87.0])
    memory_used_mb: float | None = Field(default=None, description="Used MiB.", examples=[30500.0])
    memory_total_mb: float | None = Field(default=None, description="Total MiB.", examples=[40960])
    temperature_c: float | None = Field(default=None, description="Core °C.", examples=[64.0])
    power_w: float | None = Field(default=None, description="Power draw, W.", examples=[250.5])
    processes: list[GpuProcess] = Field(default_factory=list, description="Processes on it.")
    error: str | None = Field(default=None, description="Why a reading is missing.")


class AgentHeartbeat(Model):
    """What a GPU machine reports every few seconds."""

    machine_id: str = Field(description="Host name; matches ClearML worker ids.", examples=["gb1"])
    interval_s: float = Field(description="Seconds between heartbeats.", examples=[5.0])
    gpus: list[GpuReading] = Field(default_factory=list, description="One entry per GPU.")
    cpu_pct: float | None = Field(default=None, description="Host CPU %.", examples=[23.5])
    memory_used_mb: float | None = Field(default=None, description="Host RAM used.")
    memory_total_mb: float | None = Field(default=None, description="Host RAM total.")
    nvml_error: str | None = Field(
        default=None, description="Why there are no GPU readings (CPU-only heartbeat)."
    )
    simulated: bool = Field(default=False, description="True for `--simulate` agents.")
