"""Shared pieces of the benchmarks: the stack in subprocesses, percentiles, the report."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import httpx

from mlbus.devissuer import SigningKey
from mlbus.servers.ferretdb import FerretDBServer
from mlbus.servers.kafka import KafkaServer
from mlbus.servers.process import Child, free_port

RESULTS = Path(__file__).resolve().parent / "results"


def say(text: str) -> None:
    """Progress and results go to stdout."""
    print(text, flush=True)  # noqa: T201 - a benchmark prints its table


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of a list of milliseconds."""
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


async def paced(
    count: int, rate: float | None, one: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    """Call `one(i)` `count` times: all at once (closed loop, the caller bounds concurrency),
    or started at `rate` per second on a fixed schedule (open loop: a slow answer does not slow
    the senders, as with real users)."""
    if rate is None:
        await asyncio.gather(*(one(i) for i in range(count)))
        return
    began = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


def wait_http(url: str, timeout_s: float = 60) -> None:
    """Until `url` answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


#: A service under cProfile. `python -m cProfile` writes nothing when the module ends with
#: `sys.exit` (SystemExit escapes it) or when uvicorn, having shut down, raises the SIGTERM it
#: caught again; here SIGTERM exits through Python and the profile is dumped whatever the exit.
_PROFILED = """
import cProfile, runpy, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
profile = cProfile.Profile()
profile.enable()
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profile.disable()
    profile.dump_stats({prof!r})
"""


class Stack:
    """Kafka, FerretDB, the ClearML simulator, the dev issuer and mlbus services, all fresh."""

    def __init__(self, profile: Sequence[str] = (), mongo_home: Path | None = None) -> None:
        """`mongo_home`: FerretDB's data there (kept after the run, reused by the next one)
        instead of in the run's own temporary directory."""
        self.profile = set(profile)
        self.home = Path(tempfile.mkdtemp(prefix="mlbus-bench-"))
        self.kafka = KafkaServer(self.home / "kafka")
        self.mongo = FerretDBServer(mongo_home or self.home / "ferretdb")
        self.children: list[Child] = []
        self.key = SigningKey.load_or_create(self.home / "key.pem")
        self.sim_url = f"http://127.0.0.1:{free_port()}"
        self.issuer_url = f"http://127.0.0.1:{free_port()}"
        self.ingest_url = f"http://127.0.0.1:{free_port()}"
        self.realm = f"{self.issuer_url}/realms/mlbus"
        self.extra_env: dict[str, str] = {}  # settings a benchmark adds for every service

    def env(self) -> dict[str, str]:
        return {
            "MLBUS_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "MLBUS_MONGO_URI": self.mongo.uri,
            "MLBUS_INGEST_JWKS_URL": f"{self.realm}/protocol/openid-connect/certs",
            "MLBUS_INGEST_ISSUER": self.realm,
            "MLBUS_INGEST_PORT": self.ingest_url.rsplit(":", 1)[1],
            "MLBUS_ENQUEUER_CLEARML_API_HOST": self.sim_url,
            "MLBUS_MONITOR_CLEARML_API_HOST": self.sim_url,
            "MLBUS_LOG_LEVEL": "WARNING",
            # A benchmark is one user sending far more than a person would: no quotas.
            "MLBUS_INGEST_RATE_QUOTAS": json.dumps(
                {"enqueue": {"user": 10**9}, "ondemand": {"user": 10**9}}
            ),
            "MLBUS_INGEST_TASK_QUOTAS": json.dumps({"user": 10**9}),
            **self.extra_env,
        }

    def spawn(self, name: str, *argv: str, env: dict[str, str] | None = None) -> Child:
        child = Child(
            name, [sys.executable, *argv], self.home / f"{name}.log", {**self.env(), **(env or {})}
        )
        child.start()
        self.children.append(child)
        return child

    def start(self, services: Sequence[str]) -> None:
        say(f"starting Kafka, FerretDB, simulator, issuer and {', '.join(services)} ({self.home})")
        self.kafka.start()
        self.mongo.start()
        self.spawn("clearml-sim", "-m", "clearml_sim", "--port", self.sim_url.rsplit(":", 1)[1])
        self.spawn(
            "issuer",
            "-m",
            "mlbus.devissuer",
            "--port",
            self.issuer_url.rsplit(":", 1)[1],
            "--key",
            str(self.home / "key.pem"),
        )
        wait_http(f"{self.sim_url}/_sim/health")
        wait_http(f"{self.realm}/.well-known/openid-configuration")
        for name in services:
            module = f"services.{name.split('#')[0]}"
            if name.split("#")[0] in self.profile:
                prof = str(self.home / f"{name}.prof")
                self.spawn(name, "-c", _PROFILED.format(module=module, prof=prof))
                say(f"profiling {name} into {prof}")
            else:
                self.spawn(name, "-m", module)
        wait_http(f"{self.ingest_url}/readyz")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each process has used so far."""
        import psutil

        procs = {c.name: c.proc for c in self.children}
        procs["kafka"] = self.kafka.child.proc if self.kafka.child else None
        procs["ferretdb"] = self.mongo.child.proc if self.mongo.child else None
        out: dict[str, float] = {}
        for name, proc in procs.items():
            if proc is not None and proc.poll() is None:
                times = psutil.Process(proc.pid).cpu_times()
                out[name] = round(times.user + times.system, 2)
        return out

    def token(self, user: str, roles: list[str]) -> str:
        return self.key.sign(self.realm, user, roles)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.kafka.stop()
        self.mongo.stop()


def write_report(name: str, report: dict[str, Any]) -> Path:
    """JSON next to the benchmarks, named by time."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
