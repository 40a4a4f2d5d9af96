"""NvmlProbe against a fake pynvml module: units, per-GPU and per-field failures, NVML missing."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.codec import decode, encode, envelope_for
from schemas.heartbeat import GpuProcess
from schemas.topics import HEARTBEATS
from services.agent.collector import Machine, heartbeat
from services.agent.host import HostRead
from services.agent.nvml import NvmlProbe

MIB = 1024 * 1024
NOT_SUPPORTED, LIB_NOT_FOUND, GPU_LOST = 3, 12, 15
_TEXT = {
    NOT_SUPPORTED: "Not Supported",
    LIB_NOT_FOUND: "NVML Shared Library Not Found",
    GPU_LOST: "GPU is lost",
}


class FakeNVMLError(Exception):
    """Like pynvml.NVMLError: built from an NVML return code, `str()` is NVML's text."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _TEXT.get(self.value, f"error {self.value}")


@dataclass
class FakeGpu:
    """One GPU as the fake driver sees it; `fail` names calls that raise, with their code."""

    name: bytes | str = "NVIDIA A100-SXM4-40GB"
    uuid: bytes | str = "GPU-0000"
    util: int = 87
    mem_used: int = 30500 * MIB
    mem_total: int = 40960 * MIB
    temp: int = 64
    power_mw: int = 250_500
    compute: list[Any] = field(default_factory=list)
    graphics: list[Any] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)


class FakeNvml:
    """The part of the pynvml module that the probe uses."""

    NVMLError = FakeNVMLError
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus: list[FakeGpu], init_error: Exception | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.count_error: Exception | None = None
        self.inits = self.shutdowns = 0

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        self.inits += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        if self.count_error is not None:
            raise self.count_error
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:  # noqa: N802
        return self._call(self.gpus[i], "handle", lambda g: g)

    def nvmlDeviceGetName(self, h: FakeGpu) -> bytes | str:  # noqa: N802
        return self._call(h, "name", lambda g: g.name)

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> bytes | str:  # noqa: N802
        return self._call(h, "uuid", lambda g: g.uuid)

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Any:  # noqa: N802
        return self._call(h, "util", lambda g: SimpleNamespace(gpu=g.util, memory=10))

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> Any:  # noqa: N802
        return self._call(
            h, "memory", lambda g: SimpleNamespace(used=g.mem_used, total=g.mem_total, free=0)
        )

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:  # noqa: N802
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._call(h, "temp", lambda g: g.temp)

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:  # noqa: N802
        return self._call(h, "power", lambda g: g.power_mw)

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[Any]:  # noqa: N802
        return self._call(h, "compute", lambda g: g.compute)

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: FakeGpu) -> list[Any]:  # noqa: N802
        return self._call(h, "graphics", lambda g: g.graphics)

    @staticmethod
    def _call(gpu: FakeGpu, what: str, read: Any) -> Any:
        if what in gpu.fail:
            raise FakeNVMLError(gpu.fail[what])
        return read(gpu)


def proc(pid: int, mib: int | None) -> SimpleNamespace:
    return SimpleNamespace(pid=pid, usedGpuMemory=None if mib is None else mib * MIB)


def three_gpus() -> list[FakeGpu]:
    return [
        FakeGpu(name=b"NVIDIA A100-SXM4-40GB", uuid=b"GPU-aaaa"),
        FakeGpu(
            name="NVIDIA H100 80GB HBM3",
            uuid="GPU-bbbb",
            util=3,
            mem_used=512 * MIB,
            mem_total=81559 * MIB,
            temp=41,
            power_mw=71_250,
        ),
        FakeGpu(name="NVIDIA L40S", uuid="GPU-cccc", util=50),
    ]


def test_full_readings_are_converted_to_mib_watts_and_text() -> None:
    gpus = NvmlProbe(FakeNvml(three_gpus())).read()
    assert gpus.error is None
    a, h, _ = gpus.gpus
    assert (a.index, a.uuid, a.name) == (0, "GPU-aaaa", "NVIDIA A100-SXM4-40GB")
    assert (a.utilization_pct, a.memory_used_mb, a.memory_total_mb) == (87.0, 30500.0, 40960.0)
    assert (a.temperature_c, a.power_w, a.error) == (64.0, 250.5, None)
    assert (h.index, h.uuid, h.name) == (1, "GPU-bbbb", "NVIDIA H100 80GB HBM3")
    assert (h.memory_used_mb, h.memory_total_mb, h.power_w) == (512.0, 81559.0, 71.2)


def test_a_gpu_whose_handle_fails_carries_the_error_and_the_others_are_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeNvml(three_gpus())
    fake.gpus[1].fail["handle"] = GPU_LOST
    probe = NvmlProbe(fake)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            gpus = probe.read().gpus
    assert [g.index for g in gpus] == [0, 1, 2]
    lost = gpus[1]
    assert lost.error == "handle: GPU is lost"
    assert lost.utilization_pct is lost.memory_used_mb is lost.power_w is None
    assert gpus[0].error is gpus[2].error is None
    assert gpus[2].utilization_pct == 50.0
    assert sum("GPU 1" in r.getMessage() for r in caplog.records) == 1


def test_one_unsupported_field_leaves_only_that_field_empty() -> None:
    fake = FakeNvml(three_gpus())
    fake.gpus[0].fail["power"] = NOT_SUPPORTED
    g = NvmlProbe(fake).read().gpus[0]
    assert g.power_w is None
    assert g.error == "power: Not Supported"
    assert (g.utilization_pct, g.memory_used_mb, g.temperature_c) == (87.0, 30500.0, 64.0)
    assert g.uuid == "GPU-aaaa"


def test_compute_and_graphics_processes_are_merged_one_per_pid() -> None:
    gpu = FakeGpu(
        compute=[proc(4242, 812), proc(77, None)],
        graphics=[proc(77, 64), proc(4242, 812), proc(9, None)],
    )
    g = NvmlProbe(FakeNvml([gpu])).read().gpus[0]
    assert g.processes == [
        GpuProcess(pid=9, used_memory_mb=None),
        GpuProcess(pid=77, used_memory_mb=64.0),
        GpuProcess(pid=4242, used_memory_mb=812.0),
    ]


def test_failing_process_list_keeps_the_other_one() -> None:
    gpu = FakeGpu(graphics=[proc(5, 10)], fail={"compute": NOT_SUPPORTED})
    g = NvmlProbe(FakeNvml([gpu])).read().gpus[0]
    assert g.processes == [GpuProcess(pid=5, used_memory_mb=10.0)]
    assert g.error == "compute processes: Not Supported"


def test_nvml_init_failure_gives_cpu_only_heartbeats_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeNvml(three_gpus(), init_error=FakeNVMLError(LIB_NOT_FOUND))
    machine = Machine("gb1", NvmlProbe(fake, reinit_every=12))
    host = HostRead(cpu_pct=12.5, memory_used_mb=1000.0, memory_total_mb=8000.0)
    with caplog.at_level(logging.INFO, logger="services.agent"):
        beats = [heartbeat(machine, host, 5.0) for _ in range(5)]
    for hb in beats:
        assert hb.gpus == []
        assert hb.nvml_error is not None
        assert "NVML Shared Library Not Found" in hb.nvml_error
        assert hb.cpu_pct == 12.5
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "NVML Shared Library Not Found" in caplog.records[0].getMessage()
    assert fake.inits == 1  # not retried on every read
    back = decode(HEARTBEATS, encode(envelope_for(HEARTBEATS, beats[0]))).payload
    assert back == beats[0]


def test_nvml_that_comes_up_later_is_picked_up(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml(three_gpus(), init_error=OSError("libnvidia-ml.so.1: cannot open"))
    probe = NvmlProbe(fake, reinit_every=3)
    assert probe.read().error is not None
    fake.init_error = None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="services.agent"):
        reads = [probe.read() for _ in range(4)]
    assert [r.error is None for r in reads] == [False, False, False, True]
    assert len(reads[-1].gpus) == 3
    assert [r.getMessage() for r in caplog.records] == ["NVML initialised; reading GPUs"]


def test_missing_pynvml_module_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    read = NvmlProbe().read()
    assert read.gpus == []
    assert read.error is not None
    assert read.error.startswith("pynvml cannot be imported")


def test_device_count_failure_shuts_down_and_reinitialises_later() -> None:
    fake = FakeNvml(three_gpus())
    probe = NvmlProbe(fake, reinit_every=1)
    assert len(probe.read().gpus) == 3
    fake.count_error = FakeNVMLError(GPU_LOST)
    assert probe.read().error == "nvmlDeviceGetCount failed: GPU is lost"
    assert fake.shutdowns == 1
    fake.count_error = None
    probe.read()  # still backing off
    assert len(probe.read().gpus) == 3
    assert fake.inits == 2


def test_close_shuts_nvml_down_once_and_only_if_it_was_up() -> None:
    fake = FakeNvml(three_gpus())
    probe = NvmlProbe(fake)
    probe.close()
    assert fake.shutdowns == 0
    probe.read()
    probe.close()
    probe.close()
    assert fake.shutdowns == 1
