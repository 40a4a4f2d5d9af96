"""The GPU agent against real NVML, on a machine with an NVIDIA GPU: one short, prepared check.

It runs the agent's own read path (the Collector with the real `NvmlProbe`, pynvml underneath),
encodes each heartbeat exactly as the agent publishes it and decodes it as the monitor does, and
feeds the decoded heartbeats to the monitor's free-GPU rule and the notifier's machine rules.
In between it loads the GPU from a child process (PyTorch matmuls and a large allocation), so the
readings must move: utilisation up, memory up, the saturation alert raised, then cleared when the
load stops. Kafka is not started here (no broker on that machine); the bytes checked are the bytes
the agent would send.

    python3 scripts/device_nvml_check.py [--load-s 15] [--alloc-gib 16]

Prints one line per reading and a PASS/FAIL line per check; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.codec import decode, encode, envelope_for
from schemas.heartbeat import AgentHeartbeat
from schemas.topics import HEARTBEATS
from services.agent.collector import Collector, Machine
from services.agent.nvml import NvmlProbe
from services.monitor.resources import FreeRule
from services.notifier.alerts import AlertBook, Grouping
from services.notifier.machines import MachineLimits, MachineRules

LOAD = """
import sys, time, torch
alloc_gib, seconds = float(sys.argv[1]), float(sys.argv[2])
dev = torch.device("cuda")
hold = torch.empty(int(alloc_gib * 2**30), dtype=torch.uint8, device=dev)
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
print(f"load: pid {__import__('os').getpid()} on {torch.cuda.get_device_name(0)}", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(20):
        a = (a @ b).clamp_(-1, 1)
    torch.cuda.synchronize()
print("load: done", flush=True)
"""


def line(hb: AgentHeartbeat, label: str) -> str:
    parts = [f"{label:>5}"]
    for g in hb.gpus:
        parts.append(
            f"gpu{g.index} {g.name} util={g.utilization_pct}% "
            f"mem={g.memory_used_mb}/{g.memory_total_mb} MiB temp={g.temperature_c} C "
            f"power={g.power_w} W procs={[p.pid for p in g.processes]}"
            + (f" errors={g.error}" if g.error else "")
        )
    if hb.nvml_error:
        parts.append(f"nvml_error={hb.nvml_error}")
    parts.append(f"cpu={hb.cpu_pct}%")
    return " | ".join(parts)


def read(collector: Collector) -> tuple[AgentHeartbeat, datetime]:
    """One heartbeat through the agent's encoder and the monitor's decoder."""
    (hb,) = collector.collect()
    env = envelope_for(HEARTBEATS, hb)
    back = decode(HEARTBEATS, encode(env))
    assert isinstance(back.payload, AgentHeartbeat)
    return back.payload, back.created_at


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load-s", type=float, default=15.0)
    ap.add_argument("--alloc-gib", type=float, default=16.0)
    args = ap.parse_args()

    checks: list[tuple[str, bool, str]] = []
    collector = Collector([Machine("device-check", NvmlProbe())], interval_s=1.0)
    rule = FreeRule()
    book = AlertBook(Grouping())
    rules = MachineRules(
        MachineLimits(busy_pct=90.0, busy_for_s=5.0), book, started_at=datetime.now(UTC)
    )

    def step(label: str, wait_s: float = 1.0) -> AgentHeartbeat:
        time.sleep(wait_s)
        hb, sent_at = read(collector)
        rules.heartbeat(hb, sent_at, datetime.now(UTC))
        print(line(hb, label), flush=True)
        return hb

    idle = [step("idle") for _ in range(3)]
    first = idle[-1]
    checks.append(("NVML initialised", first.nvml_error is None, str(first.nvml_error)))
    checks.append(("at least one GPU", len(first.gpus) >= 1, f"{len(first.gpus)} GPUs"))
    if not first.gpus:
        return report(checks)
    g0 = first.gpus[0]
    every = all(
        v is not None
        for v in (
            g0.utilization_pct,
            g0.memory_used_mb,
            g0.memory_total_mb,
            g0.temperature_c,
            g0.power_w,
        )
    )
    checks.append(("every field read on gpu0", every and not g0.error, str(g0.error)))
    checks.append(("gpu0 free when idle", rule.is_free(g0), f"util {g0.utilization_pct}%"))

    load = subprocess.Popen(
        [sys.executable, "-c", LOAD, str(args.alloc_gib), str(args.load_s)],
    )
    busy: list[AgentHeartbeat] = []
    raised = False
    while load.poll() is None:
        busy.append(step("load"))
        raised = raised or book.is_active("gpu_saturated", "device-check/gpu0")
    load.wait()
    peak_util = max((hb.gpus[0].utilization_pct or 0.0) for hb in busy) if busy else 0.0
    peak_mem = max((hb.gpus[0].memory_used_mb or 0.0) for hb in busy) if busy else 0.0
    grew = peak_mem - (g0.memory_used_mb or 0.0)
    pids = {p.pid for hb in busy for p in hb.gpus[0].processes}
    checks.append(("load ran", load.returncode == 0, f"exit {load.returncode}"))
    checks.append(("utilisation rose above 90%", peak_util > 90.0, f"peak {peak_util}%"))
    checks.append(
        (
            "memory rose by the allocation",
            grew >= args.alloc_gib * 1024 * 0.9,
            f"+{grew:.0f} MiB for {args.alloc_gib:g} GiB",
        )
    )
    hottest = max(busy, key=lambda hb: hb.gpus[0].utilization_pct or 0.0).gpus[0]
    checks.append(("gpu0 not free under load", not rule.is_free(hottest), ""))
    checks.append(("gpu_saturated raised (5 s window)", raised, ""))
    print(f"processes NVML listed under load: {sorted(pids) or 'none'} (load pid {load.pid})")

    after = [step("after") for _ in range(4)]
    cleared = not book.is_active("gpu_saturated", "device-check/gpu0")
    last = after[-1].gpus[0]
    checks.append(("gpu_saturated cleared after the load", cleared, ""))
    checks.append(("gpu0 free again", rule.is_free(last), f"util {last.utilization_pct}%"))
    collector.close()
    again = NvmlProbe()
    reread = again.read()
    again.close()
    checks.append(("NVML shut down and initialised again", reread.error is None, ""))
    return report(checks)


def report(checks: list[tuple[str, bool, str]]) -> int:
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
