"""Plausible machine stats and metrics for simulated agents (shapes of §6.3 and §4.1)."""

from __future__ import annotations

import hashlib
import random
from typing import Any

GPU_MEMORY_MB = 81920.0
RAM_MB = 131072.0


def machine_stats(rng: random.Random, gpus: int, running: int, slots: int) -> dict[str, Any]:
    """``machine_stats`` as the agent's resource monitor sends them, with per-GPU lists."""
    busy = gpus if running and slots == 1 else min(gpus, running * max(1, gpus // slots))
    usage, memory, temps = [], [], []
    for i in range(gpus):
        if i < busy:
            usage.append(round(rng.uniform(85.0, 99.0), 1))
            memory.append(round(GPU_MEMORY_MB * rng.uniform(0.55, 0.85), 1))
            temps.append(round(rng.uniform(65.0, 82.0), 1))
        else:
            usage.append(round(rng.uniform(0.0, 3.0), 1))
            memory.append(round(rng.uniform(3.0, 400.0), 1))
            temps.append(round(rng.uniform(30.0, 40.0), 1))
    used_ram = RAM_MB * (rng.uniform(0.25, 0.45) if running else rng.uniform(0.03, 0.08))
    stats: dict[str, Any] = {
        "cpu_usage": [round(rng.uniform(35.0, 70.0) if running else rng.uniform(0.5, 6.0), 1)],
        "memory_used": round(used_ram, 1),
        "memory_free": round(RAM_MB - used_ram, 1),
        "disk_free_home": 62.0,
        "disk_read": round(rng.uniform(0.0, 40.0 if running else 0.5), 3),
        "disk_write": round(rng.uniform(0.0, 10.0 if running else 0.2), 3),
        "network_rx": round(rng.uniform(0.0, 5.0 if running else 0.05), 3),
        "network_tx": round(rng.uniform(0.0, 2.0 if running else 0.05), 3),
    }
    if gpus:
        stats["gpu_usage"] = usage
        stats["gpu_memory_used"] = memory
        stats["gpu_memory_free"] = [round(GPU_MEMORY_MB - m, 1) for m in memory]
        stats["gpu_temperature"] = temps
    return stats


def _hash(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def last_metrics(rng: random.Random) -> dict[str, Any]:
    """``last_metrics`` keyed by md5 of metric and variant, as the server stores them."""
    out: dict[str, Any] = {}
    for metric, variant, value in (
        ("Summary", "accuracy", rng.uniform(0.80, 0.97)),
        ("Summary", "loss", rng.uniform(0.05, 0.4)),
    ):
        item = {"metric": metric, "variant": variant, "value": round(value, 4), "count": 1}
        out.setdefault(_hash(metric), {})[_hash(variant)] = item
    return out
