"""What every GPU probe gives the collector: the readings of one instant, or why there are none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from schemas.heartbeat import GpuReading


@dataclass(frozen=True)
class GpuRead:
    """One read of every GPU on a machine. `error` set means no GPU could be read at all."""

    gpus: list[GpuReading] = field(default_factory=list)
    error: str | None = None


class GpuProbe(Protocol):
    """A source of GPU readings: real NVML or a simulation."""

    @property
    def simulated(self) -> bool:
        """True when the readings are made up (`--simulate`)."""
        ...

    def read(self) -> GpuRead:
        """Read every GPU now. May block (NVML calls do): call it off the event loop."""
        ...

    def close(self) -> None:
        """Release the library; reads after close are not allowed."""
        ...
