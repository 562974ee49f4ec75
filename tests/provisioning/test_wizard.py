"""Calibration decisions on simulated bench readings: accepted, or refused for a reason."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.sim.bench import SimBay
from provisioning.wizard import Limits, Measure, SlotWizard, Step

LIM = Limits(sps=80, window_s=1.0, max_wait_s=4.0)


def run(m: Measure, bay: SimBay, seconds: float = 6.0) -> Measure:
    for _ in range(int(seconds * 10)):
        block = bay.read(8)
        p = m.feed(block.counts, block.valid)
        if p.verdict is not None:
            m.verdict = p.verdict  # type: ignore[attr-defined]
            return m
    raise AssertionError("no verdict")


def verdict(m: Measure, bay: SimBay) -> str:
    return str(run(m, bay).verdict.code)  # type: ignore[attr-defined]


def tared(bay: SimBay, channel: int) -> SlotWizard:
    wiz = SlotWizard(channel, channel, LIM)
    m = run(wiz.measure(Step.EMPTY), bay)
    assert m.verdict.ok  # type: ignore[attr-defined]
    wiz.tared(m.verdict)  # type: ignore[attr-defined]
    return wiz


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    channel=st.integers(0, 3),
    known=st.floats(400, 2000),
    noise=st.floats(0.05, 1.0),
    cpg=st.floats(100, 500),
)
def test_a_clean_calibration_reads_true_within_a_gram(
    seed: int, channel: int, known: float, noise: float, cpg: float
) -> None:
    bay = SimBay(4, seed=seed, noise_grams=noise, counts_per_gram=cpg)
    wiz = tared(bay, channel)
    bay.place(channel, known)
    m = run(wiz.measure(Step.KNOWN, known), bay)
    assert m.verdict.ok, m.verdict.message  # type: ignore[attr-defined]
    cal = wiz.scaled(m.verdict, known)  # type: ignore[attr-defined]
    bay.remove(channel, known)
    bay.place(channel, 500)
    fresh = bay.read(400)
    good = fresh.counts[:, channel].astype(float)
    assert abs(cal.grams(good.mean()) - 500) <= 1.0
    check = run(wiz.measure(Step.CHECK, 500), bay)
    assert check.verdict.ok, check.verdict.message  # type: ignore[attr-defined]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), channel=st.integers(0, 3), other=st.integers(0, 3))
def test_a_weight_on_the_wrong_slot_is_named(seed: int, channel: int, other: int) -> None:
    bay = SimBay(4, seed=seed)
    wiz = tared(bay, channel)
    if other != channel:
        bay.place(other, 500)
        m = run(wiz.measure(Step.KNOWN, 500), bay)
        assert m.verdict.code == "wrong_slot"  # type: ignore[attr-defined]
        assert f"channel {other}" in m.verdict.message  # type: ignore[attr-defined]
    else:
        assert verdict(wiz.measure(Step.KNOWN, 500), bay) == "nothing"


def test_nothing_placed_is_refused() -> None:
    bay = SimBay(4)
    wiz = tared(bay, 1)
    assert verdict(wiz.measure(Step.KNOWN, 500), bay) == "nothing"


def test_a_weight_that_reads_lighter_is_a_wiring_fault() -> None:
    bay = SimBay(4)
    wiz = tared(bay, 2)
    bay.remove(2, 200)  # a cell mounted upside down reads the weight as a lift
    m = run(wiz.measure(Step.KNOWN, 200), bay)
    assert m.verdict.code == "wrong_sign"  # type: ignore[attr-defined]
    assert "backwards" in m.verdict.message  # type: ignore[attr-defined]


def test_a_dead_channel_is_refused_at_once() -> None:
    bay = SimBay(4)
    bay.disconnect(0)
    m = run(SlotWizard(0, 0, LIM).measure(Step.EMPTY), bay, seconds=1.5)
    assert m.verdict.code == "dead"  # type: ignore[attr-defined]
    assert "cable" in m.verdict.message  # type: ignore[attr-defined]


def test_a_saturated_channel_is_refused() -> None:
    bay = SimBay(4)
    bay.place(3, 60_000)  # far beyond the 24-bit range at ~250 counts per gram
    assert verdict(SlotWizard(3, 3, LIM).measure(Step.EMPTY), bay) == "saturated"


def test_a_noisy_channel_is_refused_after_waiting() -> None:
    bay = SimBay(4)
    bay.set_noise(1, 8.0)
    assert verdict(SlotWizard(1, 1, LIM).measure(Step.EMPTY), bay) == "noisy"


def test_a_drifting_reading_is_unsettled() -> None:
    bay = SimBay(4)
    m = SlotWizard(0, 0, LIM).measure(Step.EMPTY)
    for _ in range(80):
        bay.place(0, 0.6)  # creeping up steadily: quiet samples, never still
        block = bay.read(8)
        p = m.feed(block.counts, block.valid)
        if p.verdict is not None:
            break
    assert p.verdict is not None and p.verdict.code == "unsettled"


def test_a_second_weight_that_reads_wrong_is_nonlinear() -> None:
    bay = SimBay(4)
    wiz = tared(bay, 0)
    bay.place(0, 500)
    m = run(wiz.measure(Step.KNOWN, 500), bay)
    wiz.scaled(m.verdict, 500)  # type: ignore[attr-defined]
    bay.place(0, 520)  # the person says 1000 g but the shelf now carries 1020 g
    assert verdict(wiz.measure(Step.CHECK, 1000), bay) == "nonlinear"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-(1 << 24), 1 << 24), min_size=2, max_size=2), max_size=200),
    st.sampled_from(list(Step)),
)
def test_any_counts_give_a_known_verdict_or_none(rows: list[list[int]], step: Step) -> None:
    m = Measure(step, 1, LIM, zero_counts=0.0, counts_per_gram=10.0, known_grams=100.0)
    m.reference = {0: 0.0, 1: 0.0}
    arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
    for a in range(0, len(arr), 10):
        p = m.feed(arr[a : a + 10])
        if p.verdict is not None:
            assert p.verdict.code in {
                "ok",
                "dead",
                "saturated",
                "noisy",
                "unsettled",
                "nothing",
                "wrong_slot",
                "wrong_sign",
                "nonlinear",
            }
            assert p.verdict.message
