"""Simulated HX711 counts: deterministic, physically tied to the truth, faults visible."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import ADC_MAX, Scenario, load_scenario, parse_scenario
from firmware_bridge.sim.twin import StoreTwin


def small(**hx: float) -> Scenario:
    base = load_scenario("quiet").model_dump()
    base["slots"] = base["slots"][:4]
    base["hx711"].update(hx)
    return parse_scenario(base)


def stack(sim: LoadCellSim, block_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bs = list(sim.blocks(block_s))
    return (
        np.concatenate([b.t for b in bs]),
        np.concatenate([b.counts for b in bs]),
        np.concatenate([b.valid for b in bs]),
    )


def test_same_seed_same_counts_whatever_the_block_size() -> None:
    sc = load_scenario("noisy")
    run = StoreTwin(sc, 4).simulate(200)
    t1, c1, v1 = stack(LoadCellSim(run, sc, 4), 1.0)
    t2, c2, v2 = stack(LoadCellSim(run, sc, 4), 0.37)
    assert c1.dtype == np.int32 and c1.shape == (200 * 80, sc.channels)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(v1, v2)
    _, c3, _ = stack(LoadCellSim(run, sc, 5), 1.0)
    assert not np.array_equal(c1, c3)
    assert ((c1 >= -(1 << 23)) & (c1 <= ADC_MAX)).all()


def test_counts_follow_the_stock_changes() -> None:
    sc = load_scenario("busy")
    run = StoreTwin(sc, 9).simulate(900)
    sim = LoadCellSim(run, sc, 9)
    t, counts, _ = sim.arrays()
    checked = 0
    for c in run.changes:
        if c.kind == "sensor_fault":
            continue
        ch = sc.slot(c.slot).channel
        before = (t > c.t_start - 1.0) & (t < c.t_start)
        after = (t > c.t_end + 2.0) & (t < c.t_end + 3.0)
        if not before.any() or not after.any():
            continue
        step = np.median(counts[after, ch]) - np.median(counts[before, ch])
        grams = step / sim.counts_per_gram[ch]
        assert grams == pytest.approx(c.grams, abs=0.02 * abs(c.grams) + 15), c
        checked += 1
    assert checked >= 10


def test_hands_make_the_weight_unsettled_while_handling() -> None:
    sc = load_scenario("quiet")
    run = StoreTwin(sc, 1).simulate(1800)
    sim = LoadCellSim(run, sc, 1)
    t, counts, _ = sim.arrays()
    for h in run.handlings[:10]:
        ch = sc.slot(h.slot).channel
        inside = (t > h.t_start + 0.3 * (h.t_end - h.t_start)) & (
            t < h.t_start + 0.7 * (h.t_end - h.t_start)
        )
        grams = counts[inside, ch] / sim.counts_per_gram[ch]
        assert np.ptp(grams) > 10.0


def test_noise_creep_and_drift_are_there() -> None:
    quiet = small(noise_grams=0.0, drift_grams=0.0, drift_walk_grams=0.0, spikes_per_hour=0.0)
    noisy = small(noise_grams=2.0, drift_grams=20.0, drift_walk_grams=0.0, spikes_per_hour=0.0)
    for sc, lo, hi in ((quiet, 0.0, 0.6), (noisy, 1.5, 2.6)):
        run = StoreTwin(
            sc.model_copy(
                update={
                    "traffic": sc.traffic.model_copy(update={"arrivals_per_hour": 0.0}),
                    "staff": sc.staff.model_copy(update={"restocks_per_hour": 0.0}),
                }
            ),
            1,
        ).simulate(1200)
        sim = LoadCellSim(run, sc, 1)
        _, counts, _ = sim.arrays()
        g = counts[:, 0] / sim.counts_per_gram[0]
        assert lo <= np.std(np.diff(g)) / np.sqrt(2) <= hi  # white noise sigma
        if sc is noisy:
            assert np.ptp(g) > 10.0  # drift moves the zero


def test_faults_are_visible_in_the_raw_data() -> None:
    sc = load_scenario("faulty")
    run = StoreTwin(sc, 2).simulate(3600)
    assert {f.kind for f in run.faults} == {"disconnect", "stuck", "offset_jump"}
    sim = LoadCellSim(run, sc, 2)
    t, counts, valid = sim.arrays()
    kinds = set()
    for f in run.faults:
        during = (t >= f.t_start) & (t < f.t_end)
        if f.kind == "disconnect" and during.any():
            assert not valid[during, f.channel].any()
            assert (counts[during, f.channel] == -1).all()
            kinds.add(f.kind)
        elif f.kind == "stuck" and during.sum() > 10:
            assert len(np.unique(counts[during, f.channel])) == 1
            assert valid[during, f.channel].all()  # the ADC does not know it is stuck
            kinds.add(f.kind)
        elif f.kind == "offset_jump":
            before = (t > f.t_start - 0.5) & (t < f.t_start)
            after = (t >= f.t_start) & (t < f.t_start + 0.5)
            step = np.median(counts[after, f.channel]) - np.median(counts[before, f.channel])
            if not any(
                h.slot == f.slot and h.t_start - 1 < f.t_start < h.t_end + 3 for h in run.handlings
            ):
                assert step / sim.counts_per_gram[f.channel] == pytest.approx(f.grams, abs=20)
                kinds.add(f.kind)
    assert kinds == {"disconnect", "stuck", "offset_jump"}


def test_saturation_is_flagged_invalid() -> None:
    base = load_scenario("quiet").model_dump()
    base["slots"] = base["slots"][:2]
    base["hx711"].update(
        offset_counts=4_000_000.0,
        offset_spread_counts=0.0,
        counts_per_gram=150.0,
        counts_per_gram_spread=0.0,
    )
    sc = parse_scenario(base)
    run = StoreTwin(sc, 1).simulate(30)
    sim = LoadCellSim(run, sc, 1)
    sim.offset_counts[:] = ADC_MAX  # a cell whose zero sits at the rail
    _, counts, valid = sim.arrays()
    assert (counts == ADC_MAX)[~valid].all()
    assert (~valid).mean() > 0.3


def test_calibration_readings_give_the_true_scale() -> None:
    sc = load_scenario("noisy")
    run = StoreTwin(sc, 3).simulate(10)
    sim = LoadCellSim(run, sc, 3)
    empty, loaded = sim.calibration_blocks(1000.0)
    scale = (loaded.counts.mean(axis=0) - empty.counts.mean(axis=0)) / 1000.0
    np.testing.assert_allclose(scale, sim.counts_per_gram, rtol=1e-3)
