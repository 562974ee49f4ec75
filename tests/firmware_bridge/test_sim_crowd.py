"""The crowd scenarios: ``rush`` trains, ``crowded`` is held out and shares nothing with training."""

from __future__ import annotations

import pytest

from edge.dataset import simulate_dataset
from firmware_bridge.sim.scenario import load_scenario

TRAINING = ("quiet", "busy", "noisy", "faulty", "mixed", "rush")


def test_crowded_shares_no_sku_weight_or_wiring_with_training() -> None:
    held = load_scenario("crowded")
    skus = {s.sku for s in held.slots}
    grams = {s.unit_grams for s in held.slots}
    for name in TRAINING:
        other = load_scenario(name)
        assert not skus & {s.sku for s in other.slots}, name
        assert not grams & {s.unit_grams for s in other.slots}, name
        assert held.traffic.arrivals_per_hour != other.traffic.arrivals_per_hour
        assert [s.channel for s in held.slots] != [s.channel for s in other.slots]


def test_crowd_scenarios_are_busier_than_the_heldout_store() -> None:
    held = load_scenario("heldout")
    for name in ("rush", "crowded"):
        sc = load_scenario(name)
        assert sc.traffic.arrivals_per_hour > held.traffic.arrivals_per_hour
        assert sc.traffic.intent_mix["misplace"] > held.traffic.intent_mix["misplace"]
        assert sc.faults.stuck_per_hour > 0 and sc.faults.offset_jump_per_hour > 0


@pytest.mark.slow(seconds=20)
def test_crowded_runs_are_deterministic_and_crowded() -> None:
    a, _ = simulate_dataset("crowded", 7, 240.0)
    b, _ = simulate_dataset("crowded", 7, 240.0)
    assert [r.window.to_dict() for r in a] == [r.window.to_dict() for r in b]
    assert [r.stock_labels for r in a] == [r.stock_labels for r in b]
    c, _ = simulate_dataset("crowded", 8, 240.0)
    assert [r.window.to_dict() for r in a] != [r.window.to_dict() for r in c]
    assert sum(len(r.window.changes) for r in a) > 0
