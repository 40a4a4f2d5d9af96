"""The command line and `--once`: settings from flags, heartbeats that decode on the topic."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas.codec import decode
from schemas.topics import HEARTBEATS
from services.agent import __main__ as cli
from services.agent.collector import machine_ids
from services.agent.settings import AgentSettings


def _envelopes(text: str) -> list[bytes]:
    """Split concatenated indented JSON documents."""
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = dec.raw_decode(text, i)
        out.append(json.dumps(obj).encode())
    return out


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBUS_AGENT_MACHINE_ID", "from-env")
    monkeypatch.setenv("MLBUS_AGENT_INTERVAL_S", "9")
    s = cli.settings_from(cli.parse_args(["--interval", "2.5", "--simulate", "3"]))
    assert (s.machine_id, s.interval_s, s.simulate) == ("from-env", 2.5, 3)
    s = cli.settings_from(cli.parse_args(["--machine-id", "gb7"]))
    assert (s.machine_id, s.interval_s, s.simulate) == ("gb7", 9.0, 0)


def test_several_machines_need_simulation() -> None:
    with pytest.raises(ValidationError, match="simulate"):
        AgentSettings(machines=3)
    s = AgentSettings(machines=3, simulate=1, machine_id="sim")
    assert machine_ids(s) == ["sim-1", "sim-2", "sim-3"]


def test_once_prints_heartbeats_that_decode_on_the_heartbeat_topic(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "setup_logging", lambda *_: None)  # leave pytest's logging alone
    argv = ["--once", "--simulate", "2", "--machines", "3", "--machine-id", "box", "--seed", "5"]
    assert cli.main(argv) == 0
    raw = _envelopes(capsys.readouterr().out)
    beats = [decode(HEARTBEATS, r).payload for r in raw]
    assert [b.machine_id for b in beats] == ["box-1", "box-2", "box-3"]
    for b in beats:
        assert b.simulated
        assert b.nvml_error is None
        assert len(b.gpus) == 2
        assert b.memory_total_mb is not None
        assert b.memory_total_mb > 0
    assert len({g.uuid for b in beats for g in b.gpus}) == 6


def test_once_on_real_nvml_always_gives_a_valid_heartbeat(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a GPU: readings; without one (CI): a CPU-only heartbeat saying why."""
    monkeypatch.setattr(cli, "setup_logging", lambda *_: None)
    assert cli.main(["--once", "--machine-id", "here"]) == 0
    (raw,) = _envelopes(capsys.readouterr().out)
    hb = decode(HEARTBEATS, raw).payload
    assert hb.machine_id == "here"
    assert not hb.simulated
    assert bool(hb.gpus) != bool(hb.nvml_error)


def test_names_give_the_simulated_machines_the_clearml_hosts_names() -> None:
    s = cli.settings_from(cli.parse_args(["--simulate", "2", "--names", "gpu-box-01, t4-box-01"]))
    assert machine_ids(s) == ["gpu-box-01", "t4-box-01"]
    with pytest.raises(ValidationError, match="simulate"):
        AgentSettings(machine_names=("a", "b"))
