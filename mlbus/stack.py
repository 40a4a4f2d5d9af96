"""`mlbus up`: the whole local stack on local defaults, stopped cleanly by Ctrl-C.

Real Kafka, FerretDB and Keycloak (deploy/keycloak's realm), the ClearML simulator, the demo
serving node, and every mlbus service as its own process, each logging to var/logs/<name>.log.
`--replicas N` (or MLBUS_REPLICAS) runs N copies of each service that scales (see `Fleet`).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from clearml_sim.demo import DEMO_AGENTS
from mlbus.servers.ferretdb import FerretDBServer
from mlbus.servers.kafka import KafkaServer
from mlbus.servers.keycloak import KeycloakServer
from mlbus.servers.process import REPO, Child, ServerError

VAR = REPO / "var"
ISSUER_PORT, SIM_PORT, NODE_PORT, INGEST_PORT, CONSOLE_PORT = 8090, 8008, 8080, 8000, 8001
ISSUER_URL = f"http://127.0.0.1:{ISSUER_PORT}/realms/mlbus"
INGEST_URL = f"http://127.0.0.1:{INGEST_PORT}"
CONSOLE_URL = f"http://127.0.0.1:{CONSOLE_PORT}"
#: The simulated GPU agent's machines are the simulator's demo agents' hosts ("gpu-box-01" of
#: worker "gpu-box-01:gpu0"), so the monitor joins their heartbeats with the ClearML workers.
DEMO_MACHINES = tuple(dict.fromkeys(worker.split(":", 1)[0] for worker, _, _ in DEMO_AGENTS))


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass
class Proc:
    """One process of the stack and how to tell it is ready."""

    name: str
    argv: list[str]
    where: str
    ready: Callable[[], bool]
    #: Settings of this process alone (its ports), over the stack's own.
    env: dict[str, str] = field(default_factory=dict)
    child: Child | None = field(default=None, init=False)


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


#: mlbus's workers: the first copy's metrics port in the local stack, and their arguments.
WORKERS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("enqueuer", 9101, ()),
    ("monitor", 9102, ()),
    ("inference_router", 9103, ()),
    ("notifier", 9106, ()),
    ("agent", 9105, ("--simulate", "2", "--names", ",".join(DEMO_MACHINES))),
    ("logger", 9107, ()),
)
#: Services that run once whatever the replicas: the agent stands for the GPU machines (one per
#: machine, by nature).
SINGLE = frozenset({"agent"})
#: Copy k (from 0) of a service listens on its first port + k * step: ingest on 8000, 8010, ...,
#: the console on 8001, 8011, ... (its sessions are in MongoDB, so a person signed in on one
#: copy is signed in on all: tests/e2e/test_console_sessions.py), a worker's metrics on 9101,
#: 9201, ...
INGEST_STEP, METRICS_STEP = 10, 100
MAX_REPLICAS = 8
PortOf = Callable[[str, int], int]


def copy_name(service: str, index: int) -> str:
    """`ingest` for the first copy, `ingest-2`, `ingest-3`, ... for the others."""
    return service if index == 0 else f"{service}-{index + 1}"


def stack_port(service: str, index: int) -> int:
    """The local stack's port of copy `index` of `service` (ingest's HTTP, a worker's metrics)."""
    if service in ("ingest", "console"):
        return (INGEST_PORT if service == "ingest" else CONSOLE_PORT) + INGEST_STEP * index
    first = {name: port for name, port, _ in WORKERS}[service]
    return first + METRICS_STEP * index


def service_proc(
    service: str, index: int, port: int, args: tuple[str, ...] = (), name: str = ""
) -> Proc:
    """Copy `index` of one of mlbus's services on `port` (ingest's HTTP port, a worker's
    metrics port); ready when its /readyz answers 200."""
    name = name or copy_name(service, index)
    if service == "ingest":
        url = f"http://127.0.0.1:{port}"
        return Proc(
            name,
            _py("services.ingest"),
            f"{url} (HTTP API; docs at /docs)",
            _http_ok(f"{url}/readyz"),
            {"MLBUS_INGEST_PORT": str(port)},
        )
    if service == "console":  # its ingest: see Fleet.plan
        url = f"http://127.0.0.1:{port}"
        return Proc(
            name,
            _py("services.console"),
            f"{url} (web console; log in as admin / admin, operator / operator or alice / alice)",
            _http_ok(f"{url}/healthz"),
            {"MLBUS_CONSOLE_PORT": str(port), "MLBUS_CONSOLE_PUBLIC_URL": url},
        )
    return Proc(
        name,
        _py(f"services.{service}", *args),
        f"worker; metrics at http://127.0.0.1:{port}/metrics",
        _http_ok(f"http://127.0.0.1:{port}/readyz"),
        {f"MLBUS_{service.upper()}_METRICS_PORT": str(port)},
    )


class Fleet:
    """Copies of mlbus's own services as processes, each logging to `<logs>/<name>.log`: the
    local stack's, and the tests' (with their own settings and ports). `kill` is a crash
    (SIGKILL: no shutdown code runs, nothing is flushed)."""

    def __init__(self, env: dict[str, str], logs: Path, port: PortOf = stack_port) -> None:
        self.env, self.logs, self._port = env, logs, port
        self.copies: dict[str, list[Proc]] = {}
        self.started: list[Proc] = []

    def plan(self, service: str, copies: int, args: tuple[str, ...] = ()) -> list[Proc]:
        """The processes of `copies` more copies of `service` (not started)."""
        have = len(self.copies.get(service, []))
        procs = [
            service_proc(service, i, self._port(service, i), args)
            for i in range(have, have + copies)
        ]
        ingests = self.copies.get("ingest", [])
        if service == "console" and ingests:  # copy k reads through ingest copy k (or the last)
            for i, proc in enumerate(procs, start=have):
                port = ingests[min(i, len(ingests) - 1)].env["MLBUS_INGEST_PORT"]
                proc.env["MLBUS_CONSOLE_INGEST_URL"] = f"http://127.0.0.1:{port}"
        self.copies.setdefault(service, []).extend(procs)
        return procs

    def launch(self, proc: Proc) -> None:
        """Start one planned process (without waiting for it)."""
        proc.child = Child(
            proc.name, proc.argv, self.logs / f"{proc.name}.log", {**self.env, **proc.env}
        )
        proc.child.start()
        self.started.append(proc)

    def start(
        self, service: str, copies: int = 1, args: tuple[str, ...] = (), timeout_s: float = 60
    ) -> list[Proc]:
        """Start `copies` copies of `service` together; returns once every one is ready."""
        procs = self.plan(service, copies, args)
        for proc in procs:
            self.launch(proc)
        for proc in procs:
            assert proc.child is not None
            proc.child.wait_ready(proc.ready, timeout_s)
        return procs

    def kill(self, service: str, index: int = 0) -> Proc:
        """SIGKILL copy `index` of `service` (a crash)."""
        proc = self.copies[service][index]
        assert proc.child is not None
        proc.child.kill()
        return proc

    def stop(self) -> None:
        """Stop every process still running (SIGTERM, then SIGKILL), the last started first."""
        for proc in reversed(self.started):
            if proc.child is not None:
                proc.child.stop()
        self.started.clear()


def _processes(fleet: Fleet, replicas: int = 1) -> list[Proc]:
    procs = [
        Proc(
            "clearml-sim",
            _py("clearml_sim", "--port", str(SIM_PORT)),
            f"http://127.0.0.1:{SIM_PORT} (ClearML API simulator, demo agents)",
            _http_ok(f"http://127.0.0.1:{SIM_PORT}/_sim/health"),
        ),
        Proc(
            "serving-node",
            _py("serving_node", "--port", str(NODE_PORT)),
            f"http://127.0.0.1:{NODE_PORT}/serve (demo model server)",
            _http_ok(f"http://127.0.0.1:{NODE_PORT}/health"),
        ),
        *fleet.plan("ingest", replicas),
        *fleet.plan("console", replicas),
    ]
    for name, _, args in WORKERS:
        if not (REPO / "services" / name / "__main__.py").exists():
            continue  # not built yet
        procs += fleet.plan(name, 1 if name in SINGLE else replicas, args)
    return procs


def replicas_setting(given: int | None = None) -> int:
    """Copies of each service `mlbus up` runs: `given` (--replicas), else MLBUS_REPLICAS, else 1;
    ServerError when out of 1..MAX_REPLICAS."""
    text = str(given) if given is not None else os.environ.get("MLBUS_REPLICAS", "1")
    try:
        value = int(text)
    except ValueError:
        raise ServerError(f"replicas must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_REPLICAS:
        raise ServerError(f"replicas must be between 1 and {MAX_REPLICAS}, not {value}")
    return value


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the command's output


class Stack:
    """Start in order, stop in reverse."""

    def __init__(self, replicas: int = 1) -> None:
        self.replicas = replicas
        self.kafka = KafkaServer(VAR / "kafka", port=9092)
        self.mongo = FerretDBServer(VAR / "ferretdb", port=27017)
        self.keycloak = KeycloakServer(VAR / "keycloak", port=ISSUER_PORT)
        self.env = {
            "MLBUS_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "MLBUS_MONGO_URI": self.mongo.uri,
            "MLBUS_INGEST_JWKS_URL": f"{ISSUER_URL}/protocol/openid-connect/certs",
            "MLBUS_INGEST_ISSUER": ISSUER_URL,
            "MLBUS_INGEST_AUDIENCE": self.keycloak.audience,
            # the simulator serves its file server under /files
            "MLBUS_INGEST_CLEARML_FILES_HOST": f"http://127.0.0.1:{SIM_PORT}/files",
            "MLBUS_CONSOLE_ISSUER": ISSUER_URL,
            "PYTHONUNBUFFERED": "1",
        }
        self.fleet = Fleet(self.env, VAR / "logs")
        self.procs = _processes(self.fleet, replicas)
        self.started = self.fleet.started

    def up(self) -> None:
        copies = f", {self.replicas} copies of each service" if self.replicas > 1 else ""
        _say(f"mlbus: starting the local stack (data in {VAR}, logs in {VAR / 'logs'}{copies})")
        # Keycloak takes longest (~10-15 s): launched first, waited for just before ingest.
        launched = time.monotonic()
        self.keycloak.launch()
        self._timed("kafka", self.kafka.bootstrap + " (Apache Kafka 4.1, KRaft)", self.kafka.start)
        self._timed("mongodb", self.mongo.uri + " (FerretDB 1.24, SQLite)", self.mongo.start)
        self.keycloak.wait()
        _say(
            f"  {'keycloak':<16} ready in {time.monotonic() - launched:5.1f}s  "
            f"{ISSUER_URL} (Keycloak 26, realm of deploy/keycloak)"
        )
        for proc in self.procs:
            self._timed(proc.name, proc.where, functools.partial(self._start, proc))

    def _start(self, proc: Proc) -> None:
        self.fleet.launch(proc)
        assert proc.child is not None
        proc.child.wait_ready(proc.ready, timeout_s=60)

    def _timed(self, name: str, where: str, start: Callable[[], None]) -> None:
        began = time.monotonic()
        start()
        _say(f"  {name:<16} ready in {time.monotonic() - began:5.1f}s  {where}")

    def watch(self) -> None:
        """Block until Ctrl-C; report a process that dies."""
        while True:
            for proc in self.started:
                if proc.child is not None and not proc.child.alive():
                    _say(f"mlbus: {proc.name} exited; its log ends:\n{proc.child.tail()}")
                    self.started.remove(proc)
                    break
            time.sleep(1)

    def down(self) -> None:
        _say("mlbus: stopping...")
        self.fleet.stop()
        self.kafka.stop()
        self.mongo.stop()
        self.keycloak.stop()
        _say("mlbus: stopped")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def up(replicas: int | None = None) -> int:
    """Run the stack until Ctrl-C (or SIGTERM); `replicas` copies of each service that scales
    (default: MLBUS_REPLICAS, else 1)."""
    from mlbus.demo import seed_demo

    try:
        stack = Stack(replicas_setting(replicas))
    except ServerError as exc:
        _say(f"mlbus: {exc}")
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):  # explicit: a background shell ignores SIGINT
        signal.signal(sig, _interrupt)
    try:
        stack.up()
        seed_demo(INGEST_URL, ISSUER_URL, _say)
        if stack.replicas > 1:
            ingests = ", ".join(
                f"http://127.0.0.1:{stack_port('ingest', i)}" for i in range(stack.replicas)
            )
            _say(f"ingest copies (any one serves every route): {ingests}")
        _say(
            f"mlbus is up. The console: {CONSOLE_URL} (log in as admin / admin; "
            "operator / operator, alice / alice). Ctrl-C stops everything."
        )
        stack.watch()
    except KeyboardInterrupt:
        pass
    except ServerError as exc:
        _say(f"mlbus: {exc}")
        stack.down()
        return 1
    stack.down()
    return 0
