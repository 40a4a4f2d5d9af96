"""SimulatedProbe: plausible, smoothly varying, deterministic readings."""

from __future__ import annotations

from services.agent.simulated import MODELS, SimulatedProbe

TICKS = 600


def test_values_stay_plausible_and_move_smoothly_over_many_ticks() -> None:
    probe = SimulatedProbe(4, seed=7, machine_id="gb1")
    model = probe.model
    busy_seen = idle_seen = False
    last_temp: dict[int, float] = {}
    for _ in range(TICKS):
        gpus = probe.read().gpus
        assert [g.index for g in gpus] == [0, 1, 2, 3]
        for g in gpus:
            assert g.name == model.name
            assert g.error is None
            assert g.utilization_pct is not None
            assert 0.0 <= g.utilization_pct <= 100.0
            assert g.memory_used_mb is not None
            assert g.memory_total_mb == model.memory_mb
            assert 0.0 < g.memory_used_mb <= model.memory_mb
            assert g.temperature_c is not None
            assert 35.0 <= g.temperature_c <= 85.0
            assert g.power_w is not None
            assert model.idle_w * 0.8 <= g.power_w <= model.max_w
            if g.index in last_temp:
                assert abs(g.temperature_c - last_temp[g.index]) <= 11.0
            last_temp[g.index] = g.temperature_c
            busy = g.utilization_pct > 50 and bool(g.processes)
            busy_seen |= busy
            idle_seen |= g.utilization_pct < 10 and not g.processes
            assert sum(p.used_memory_mb or 0 for p in g.processes) <= g.memory_used_mb
    assert busy_seen
    assert idle_seen


def test_a_seed_and_machine_id_give_the_same_readings() -> None:
    a = SimulatedProbe(3, seed=42, machine_id="gb1")
    b = SimulatedProbe(3, seed=42, machine_id="gb1")
    c = SimulatedProbe(3, seed=43, machine_id="gb1")
    ra = [a.read() for _ in range(50)]
    assert ra == [b.read() for _ in range(50)]
    assert ra != [c.read() for _ in range(50)]


def test_uuids_are_stable_per_machine_and_index_and_names_are_real_products() -> None:
    first = SimulatedProbe(2, seed=1, machine_id="gb1").read().gpus
    again = SimulatedProbe(2, seed=99, machine_id="gb1").read().gpus
    other = SimulatedProbe(2, seed=1, machine_id="gb2").read().gpus
    assert [g.uuid for g in first] == [g.uuid for g in again]
    assert len({g.uuid for g in first + other}) == 4
    assert all(g.uuid.startswith("GPU-") for g in first)
    assert {g.name for g in first + other} <= {m.name for m in MODELS}


def test_without_a_seed_probes_differ() -> None:
    reads = [SimulatedProbe(8, machine_id="gb1").read() for _ in range(2)]
    assert reads[0] != reads[1]
