"""GPU readings from NVML through pynvml (the `nvidia-ml-py` package).

The pynvml module is passed in (the real one by default), so tests stand a fake in at exactly
this boundary. Every field is read on its own: a GPU that does not support power readings still
reports its utilisation, and a GPU whose handle fails does not stop the others. When NVML cannot
be loaded or initialised, reads report the reason (logged once) and the agent sends CPU-only
heartbeats; initialisation is tried again every `reinit_every` reads, so a driver that comes up
later is picked up without a restart.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from schemas.heartbeat import GpuProcess, GpuReading
from services.agent.errors import NvmlUnavailableError
from services.agent.probe import GpuRead

log = logging.getLogger(__name__)
T = TypeVar("T")
MIB = 1024 * 1024


def _text(value: bytes | str) -> str:
    """NVML strings are bytes in older pynvml releases and str in newer ones."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _mib(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else round(n_bytes / MIB, 1)


class _Fields:
    """Reads fields of one GPU one at a time, collecting the NVML errors instead of raising."""

    def __init__(self, nvml_error: type[Exception]) -> None:
        self._nvml_error = nvml_error
        self.errors: list[str] = []

    def get(self, label: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except self._nvml_error as exc:
            self.errors.append(f"{label}: {exc}")
            return None

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None


def merge_processes(*lists: Iterable[Any] | None) -> list[GpuProcess]:
    """Compute and graphics processes as one list, one entry per pid (a process doing both shows
    up in both lists); `usedGpuMemory` is None where the driver cannot tell (WDDM, some MIG)."""
    by_pid: dict[int, GpuProcess] = {}
    for procs in lists:
        for p in procs or ():
            pid, used = int(p.pid), _mib(getattr(p, "usedGpuMemory", None))
            seen = by_pid.get(pid)
            if seen is None or (seen.used_memory_mb is None and used is not None):
                by_pid[pid] = GpuProcess(pid=pid, used_memory_mb=used)
    return sorted(by_pid.values(), key=lambda p: p.pid)


class NvmlProbe:
    """Real GPU readings. Not thread-safe: one reader at a time (the agent's tick loop)."""

    simulated = False

    def __init__(self, nvml: Any = None, *, reinit_every: int = 12) -> None:
        self._nvml = nvml
        self._reinit_every = reinit_every
        self._ready = False
        self._reads_to_retry = 0
        self._failure: str | None = None
        self._announced = False
        self._gpu_errors: dict[int, str | None] = {}

    def read(self) -> GpuRead:
        """Read every GPU; a whole-probe failure is returned as `GpuRead.error`, not raised."""
        try:
            nv = self._ensure_init()
            gpus = self._read_all(nv)
        except NvmlUnavailableError as exc:
            self._report(str(exc))
            return GpuRead(error=str(exc))
        self._report(None)
        return GpuRead(gpus=gpus)

    def close(self) -> None:
        """Shut NVML down if it was initialised."""
        if not self._ready:
            return
        self._ready = False
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            log.debug("nvmlShutdown failed: %s", exc)

    def _ensure_init(self) -> Any:
        if self._ready:
            return self._nvml
        if self._failure is not None and self._reads_to_retry > 0:
            self._reads_to_retry -= 1
            raise NvmlUnavailableError(self._failure)
        self._reads_to_retry = self._reinit_every
        nv = self._load()
        try:
            nv.nvmlInit()
        except (nv.NVMLError, OSError) as exc:
            raise NvmlUnavailableError(f"nvmlInit failed: {exc} ({type(exc).__name__})") from exc
        self._ready = True
        return nv

    def _load(self) -> Any:
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")
            except ImportError as exc:
                raise NvmlUnavailableError(f"pynvml cannot be imported: {exc}") from exc
        return self._nvml

    def _read_all(self, nv: Any) -> list[GpuReading]:
        try:
            count = int(nv.nvmlDeviceGetCount())
        except nv.NVMLError as exc:
            # The driver went away under us: start over with nvmlInit on a later read.
            self.close()
            raise NvmlUnavailableError(f"nvmlDeviceGetCount failed: {exc}") from exc
        readings = [self._read_gpu(nv, i) for i in range(count)]
        for r in readings:
            self._note_gpu(r)
        return readings

    def _read_gpu(self, nv: Any, index: int) -> GpuReading:
        try:
            h = nv.nvmlDeviceGetHandleByIndex(index)
        except nv.NVMLError as exc:
            return GpuReading(index=index, uuid="", name="", error=f"handle: {exc}")
        f = _Fields(nv.NVMLError)
        mem = f.get("memory", lambda: nv.nvmlDeviceGetMemoryInfo(h))
        compute = f.get("compute processes", lambda: nv.nvmlDeviceGetComputeRunningProcesses(h))
        graphics = f.get("graphics processes", lambda: nv.nvmlDeviceGetGraphicsRunningProcesses(h))
        temp = f.get("temperature", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        power_mw = f.get("power", lambda: nv.nvmlDeviceGetPowerUsage(h))
        return GpuReading(
            index=index,
            uuid=f.get("uuid", lambda: _text(nv.nvmlDeviceGetUUID(h))) or "",
            name=f.get("name", lambda: _text(nv.nvmlDeviceGetName(h))) or "",
            utilization_pct=f.get(
                "utilization", lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
            ),
            memory_used_mb=None if mem is None else _mib(mem.used),
            memory_total_mb=None if mem is None else _mib(mem.total),
            temperature_c=None if temp is None else float(temp),
            power_w=None if power_mw is None else round(power_mw / 1000, 1),
            processes=merge_processes(compute, graphics),
            error=f.error,
        )

    def _report(self, failure: str | None) -> None:
        """Log a change of NVML availability once, not on every read."""
        if failure == self._failure and self._announced:
            return
        if failure is not None:
            log.warning("NVML unavailable, sending CPU-only heartbeats: %s", failure)
        else:
            log.info("NVML initialised; reading GPUs")
        self._failure, self._announced = failure, True

    def _note_gpu(self, reading: GpuReading) -> None:
        """Log a GPU's read errors when they change, not on every read."""
        before = self._gpu_errors.get(reading.index)
        if reading.error == before:
            return
        if reading.error is not None:
            log.warning("GPU %d: some readings failed: %s", reading.index, reading.error)
        else:
            log.info("GPU %d: all readings back", reading.index)
        self._gpu_errors[reading.index] = reading.error
