"""The local stack's plan for `--replicas N`: names, ports, what runs once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbus.cli import main
from mlbus.servers.process import ServerError
from mlbus.stack import Fleet, _processes, replicas_setting


def test_two_replicas_run_two_copies_of_each_service_on_ports_of_their_own() -> None:
    procs = _processes(Fleet({}, Path("var/logs")), 2)
    names = [p.name for p in procs]
    for service in (
        "ingest",
        "console",
        "enqueuer",
        "monitor",
        "inference_router",
        "notifier",
        "logger",
    ):
        assert names.count(service) == 1, names
        assert names.count(f"{service}-2") == 1, names
    for once in ("agent", "clearml-sim", "serving-node"):
        assert names.count(once) == 1
        assert f"{once}-2" not in names
    ports = [port for p in procs for name, port in p.env.items() if name.endswith("_PORT")]
    assert len(ports) == len(set(ports))
    assert {p.env["MLBUS_INGEST_PORT"] for p in procs if p.name.startswith("ingest")} == {
        "8000",
        "8010",
    }
    consoles = {p.name: p.env for p in procs if p.name.startswith("console")}
    assert consoles == {
        "console": {
            "MLBUS_CONSOLE_PORT": "8001",
            "MLBUS_CONSOLE_PUBLIC_URL": "http://127.0.0.1:8001",
            "MLBUS_CONSOLE_INGEST_URL": "http://127.0.0.1:8000",
        },
        "console-2": {
            "MLBUS_CONSOLE_PORT": "8011",
            "MLBUS_CONSOLE_PUBLIC_URL": "http://127.0.0.1:8011",
            "MLBUS_CONSOLE_INGEST_URL": "http://127.0.0.1:8010",
        },
    }
    monitors = {p.name: p.env["MLBUS_MONITOR_METRICS_PORT"] for p in procs if "monitor" in p.name}
    assert monitors == {"monitor": "9102", "monitor-2": "9202"}


def test_one_replica_is_the_stack_of_before() -> None:
    names = [p.name for p in _processes(Fleet({}, Path("var/logs")), 1)]
    assert not [n for n in names if n.endswith("-2")]
    assert names[:3] == ["clearml-sim", "serving-node", "ingest"]


def test_the_replicas_come_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLBUS_REPLICAS", raising=False)
    assert replicas_setting() == 1
    monkeypatch.setenv("MLBUS_REPLICAS", "3")
    assert replicas_setting() == 3
    assert replicas_setting(2) == 2
    for wrong in ("0", "9", "two"):
        monkeypatch.setenv("MLBUS_REPLICAS", wrong)
        with pytest.raises(ServerError):
            replicas_setting()


def test_the_command_line_refuses_a_replica_count_below_one() -> None:
    with pytest.raises(SystemExit):
        main(["up", "--replicas", "0"])
