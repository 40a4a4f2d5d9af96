"""`mlbus up`: the whole local stack on local defaults, stopped cleanly by Ctrl-C.

Real Kafka, FerretDB and Keycloak (deploy/keycloak's realm), the ClearML simulator, the demo
serving node, and every mlbus service as its own process, each logging to var/logs/<name>.log.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from clearml_sim.demo import DEMO_AGENTS
from mlbus.servers.ferretdb import FerretDBServer
from mlbus.servers.kafka import KafkaServer
from mlbus.servers.keycloak import KeycloakServer
from mlbus.servers.process import REPO, Child, ServerError, port_open

VAR = REPO / "var"
ISSUER_PORT, SIM_PORT, NODE_PORT, INGEST_PORT, CONSOLE_PORT = 8090, 8008, 8080, 8000, 8001
ISSUER_URL = f"http://127.0.0.1:{ISSUER_PORT}/realms/mlbus"
INGEST_URL = f"http://127.0.0.1:{INGEST_PORT}"
CONSOLE_URL = f"http://127.0.0.1:{CONSOLE_PORT}"
#: The simulated GPU agent's machines are the simulator's demo agents' hosts ("gpu-box-01" of
#: worker "gpu-box-01:gpu0"), so the monitor joins their heartbeats with the ClearML workers.
DEMO_MACHINES = tuple(dict.fromkeys(worker.split(":", 1)[0] for worker, _, _ in DEMO_AGENTS))


def _listens(port: int) -> Callable[[], bool]:
    return lambda: port_open(port)


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
    child: Child | None = field(default=None, init=False)


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _processes(env: dict[str, str]) -> list[Proc]:
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
        Proc(
            "ingest",
            _py("services.ingest"),
            f"{INGEST_URL} (HTTP API; docs at /docs)",
            _http_ok(f"{INGEST_URL}/readyz"),
        ),
        Proc(
            "console",
            _py("services.console"),
            f"{CONSOLE_URL} (web console; log in as admin / admin, operator / operator or "
            "alice / alice)",
            _http_ok(f"{CONSOLE_URL}/healthz"),
        ),
    ]
    workers = [
        ("enqueuer", 9101, ()),
        ("monitor", 9102, ()),
        ("inference_router", 9103, ()),
        ("notifier", 9106, ()),
        ("agent", 9105, ("--simulate", "2", "--names", ",".join(DEMO_MACHINES))),
        ("logger", 9107, ()),
    ]
    for name, port, args in workers:
        if not (REPO / "services" / name / "__main__.py").exists():
            continue  # not built yet
        env[f"MLBUS_{name.upper()}_METRICS_PORT"] = str(port)
        procs.append(
            Proc(
                name,
                _py(f"services.{name}", *args),
                f"worker; metrics at http://127.0.0.1:{port}/metrics",
                _listens(port),
            )
        )
    return procs


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the command's output


class Stack:
    """Start in order, stop in reverse."""

    def __init__(self) -> None:
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
            "MLBUS_CONSOLE_INGEST_URL": INGEST_URL,
            "MLBUS_CONSOLE_PUBLIC_URL": CONSOLE_URL,
            "PYTHONUNBUFFERED": "1",
        }
        self.procs = _processes(self.env)
        self.started: list[Proc] = []

    def up(self) -> None:
        _say(f"mlbus: starting the local stack (data in {VAR}, logs in {VAR / 'logs'})")
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
            proc.child = Child(proc.name, proc.argv, VAR / "logs" / f"{proc.name}.log", self.env)
            self._timed(proc.name, proc.where, functools.partial(self._start, proc))

    def _start(self, proc: Proc) -> None:
        assert proc.child is not None
        proc.child.start()
        self.started.append(proc)
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
        for proc in reversed(self.started):
            if proc.child is not None:
                proc.child.stop()
        self.kafka.stop()
        self.mongo.stop()
        self.keycloak.stop()
        _say("mlbus: stopped")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def up() -> int:
    """Run the stack until Ctrl-C (or SIGTERM)."""
    from mlbus.demo import seed_demo

    stack = Stack()
    for sig in (signal.SIGINT, signal.SIGTERM):  # explicit: a background shell ignores SIGINT
        signal.signal(sig, _interrupt)
    try:
        stack.up()
        seed_demo(INGEST_URL, ISSUER_URL, _say)
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
