"""The store twin's timeline: deterministic for a seed, physically consistent stock."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.sim.scenario import Scenario, load_scenario, parse_scenario
from firmware_bridge.sim.twin import MIN_GAP_S, SimRun, StoreTwin

OWN = {"removal": 1, "return": 1, "restock": 1}


def check_consistent(run: SimRun, sc: Scenario) -> None:
    """Stock never goes below zero or above capacity; loads chain from one hand to the next."""
    by_slot = defaultdict(list)
    for h in run.handlings:
        assert 0 <= h.t_start < h.t_end <= run.duration_s
        assert all(h.t_start < t < h.t_end for t, _ in h.steps)
        by_slot[h.slot].append(h)
    for slot, hs in by_slot.items():
        hs.sort(key=lambda h: h.t_start)
        assert abs(hs[0].grams_before - run.initial_grams[slot]) < 1e-6
        for a, b in itertools.pairwise(hs):
            assert b.t_start >= a.t_end + MIN_GAP_S - 1e-9  # one hand at a time
            assert abs(b.grams_before - a.grams_after) < 1e-6
        assert all(h.grams_after >= -1e-6 for h in hs)
    units = dict(run.initial_units)
    for c in sorted(run.changes, key=lambda c: c.t_start):
        spec = sc.slot(c.slot)
        if c.kind in OWN:
            assert c.sku == spec.sku
            units[c.slot] += c.units
            assert 0 <= units[c.slot] <= spec.capacity, c
            assert abs(c.grams - c.units * spec.unit_grams) < 1e-6
        elif c.kind == "misplaced":
            assert c.sku != spec.sku and c.units == 1
        if c.kind != "sensor_fault":  # each change is exactly one hand's net effect
            (h,) = [h for h in by_slot[c.slot] if h.t_start == c.t_start]
            assert abs(h.grams_after - h.grams_before - c.grams) < 1e-6
    assert units == run.final_units


def test_same_seed_same_run_other_seed_other_run() -> None:
    sc = load_scenario("busy")
    a = StoreTwin(sc, 5).simulate(900)
    b = StoreTwin(sc, 5).simulate(900)
    c = StoreTwin(sc, 6).simulate(900)
    assert a == b
    assert a.changes != c.changes


def test_shipped_scenarios_are_consistent_for_an_hour() -> None:
    for name in ("quiet", "busy", "noisy", "faulty", "heldout"):
        sc = load_scenario(name)
        run = StoreTwin(sc, 11).simulate(3600)
        check_consistent(run, sc)


def test_episode_semantics() -> None:
    sc = load_scenario("busy")
    run = StoreTwin(sc, 3).simulate(3600)
    visits = defaultdict(list)
    for v in run.visits:
        visits[v.shopper].append(v)
    seen = set()
    for e in run.episodes:
        seen.add(e.intent)
        zones = {v.zone for v in visits[e.person]}
        bay = [v for v in visits[e.person] if v.zone == "bay"]
        assert len(bay) == 1 and bay[0].intent == e.intent
        if e.intent == "pass_by":
            assert zones == {"bay"} and bay[0].motion >= 0.7 and e.t_leave - e.t_enter <= 3.0
            assert not e.changes
        if e.intent == "glance":
            assert zones == {"bay"} and not e.changes
        if e.intent == "take":
            assert any(c.kind == "removal" for c in e.changes)
            assert f"slot-{e.slot}" in zones
        if e.intent == "touch":
            assert f"slot-{e.slot}" in zones
            assert sum(c.units for c in e.changes if c.kind in OWN) <= 0
        if e.intent == "restock":
            assert e.actor == "staff" and all(c.kind == "restock" for c in e.changes)
    assert {"pass_by", "glance", "browse", "touch", "take", "restock"} <= seen
    kinds = {c.kind for c in run.changes}
    assert {"removal", "return", "misplaced", "restock"} <= kinds


def test_faults_are_truth_changes() -> None:
    sc = load_scenario("faulty")
    run = StoreTwin(sc, 2).simulate(3600)
    assert {f.kind for f in run.faults} == {"stuck", "offset_jump", "disconnect"}
    faults = [c for c in run.changes if c.kind == "sensor_fault"]
    assert len(faults) == len(run.faults)
    jumps = [f for f in run.faults if f.kind == "offset_jump"]
    assert all(f.grams != 0 for f in jumps)


def _scenario(draw: Any) -> Scenario:
    n = draw(st.integers(1, 16))
    slots = []
    for i in range(n):
        cap = draw(st.integers(1, 15))
        slots.append(
            {
                "slot": i,
                "channel": n - 1 - i,
                "sku": f"S{i}",
                "unit_grams": draw(st.sampled_from([50.0, 120.0, 333.0, 1000.0, 1500.0])),
                "capacity": cap,
                "initial": draw(st.integers(0, cap)),
            }
        )
    mix = {
        k: draw(st.floats(0, 1))
        for k in ("pass_by", "glance", "browse", "touch", "take", "misplace")
    }
    mix["take"] += 0.1
    return parse_scenario(
        {
            "name": "hyp",
            "slots": slots,
            "traffic": {
                "arrivals_per_hour": draw(st.floats(0, 1500)),
                "intent_mix": mix,
                "max_take_units": draw(st.integers(1, 5)),
                "long_hold_fraction": draw(st.floats(0, 1)),
                "handling_s": sorted([draw(st.floats(0.5, 20)), draw(st.floats(0.5, 20))]),
            },
            "staff": {
                "restocks_per_hour": draw(st.floats(0, 20)),
                "restock_below": draw(st.floats(0, 1)),
            },
            "hx711": {"counts_per_gram": 100.0},
            "faults": {"offset_jump_per_hour": draw(st.floats(0, 10))},
        }
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**31), duration=st.floats(60, 1800))
def test_stock_is_physically_consistent(data: st.DataObject, seed: int, duration: float) -> None:
    sc = data.draw(st.composite(lambda draw: _scenario(draw))())
    run = StoreTwin(sc, seed).simulate(duration)
    check_consistent(run, sc)
    assert all(v.t_enter <= v.t_leave <= duration + 5 for v in run.visits)
