"""Host CPU and memory through psutil."""

from __future__ import annotations

from dataclasses import dataclass

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True)
class HostRead:
    """Host CPU busy % since the previous read, and RAM in MiB."""

    cpu_pct: float | None
    memory_used_mb: float | None
    memory_total_mb: float | None


class HostProbe:
    """Reads host CPU and memory without blocking.

    `cpu_percent(interval=None)` measures since the previous call, so the constructor makes a
    first call: the first real read then covers the time since start-up instead of returning 0.
    """

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)

    def read(self) -> HostRead:
        """CPU % since the last read and current memory use."""
        mem = psutil.virtual_memory()
        return HostRead(
            cpu_pct=float(psutil.cpu_percent(interval=None)),
            memory_used_mb=round(mem.used / MIB, 1),
            memory_total_mb=round(mem.total / MIB, 1),
        )
