"""Tare and two-point calibration: right scale from readings, bad values refused, atomic store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import CalibrationError, EdgeError
from edge.signals.calibration import CalibrationStore, ChannelCalibration, tare, two_point


@settings(max_examples=60, deadline=None)
@given(
    offset=st.floats(-4e6, 4e6),
    scale=st.floats(20, 2000),
    known=st.floats(50, 20_000),
    noise=st.floats(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_two_point_recovers_offset_and_scale(
    offset: float, scale: float, known: float, noise: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    zero = np.rint(offset + scale * rng.normal(0, noise, 240))
    loaded = np.rint(offset + scale * (known + rng.normal(0, noise, 240)))
    loaded[7] = 8_388_607  # one glitch at the rail
    cal = two_point(3, zero, loaded, known)
    assert cal.channel == 3 and cal.known_grams == known
    assert cal.counts_per_gram == pytest.approx(
        scale, rel=1e-3 + 1.0 / (scale * known) + noise / known
    )
    # six standard errors of a 240-sample mean, carried from tare and span to 500 g
    bound = 0.5 + 6 * noise * (1 + 500.0 / known) / np.sqrt(240)
    assert cal.grams(offset + scale * 500.0) == pytest.approx(500.0, abs=bound)


@pytest.mark.parametrize("known", [0.0, -100.0, float("nan"), float("inf")])
def test_a_non_positive_known_weight_is_refused(known: float) -> None:
    with pytest.raises(CalibrationError):
        two_point(0, np.zeros(20), np.ones(20) * 1000, known)


def test_zero_or_negative_scale_is_refused() -> None:
    zero = np.full(50, 10_000.0)
    with pytest.raises(CalibrationError, match="positive"):
        two_point(1, zero, zero, 500.0)  # nothing was put on the cell
    with pytest.raises(CalibrationError, match="backwards"):
        two_point(1, zero, zero - 50_000, 500.0)
    with pytest.raises(CalibrationError):
        ChannelCalibration(0, 0.0, 0.0)
    with pytest.raises(CalibrationError) as err:
        ChannelCalibration(0, float("nan"), 100.0)
    assert isinstance(err.value, EdgeError) and isinstance(err.value, ValueError)


def test_too_few_valid_samples_are_refused() -> None:
    counts = np.arange(20.0)
    valid = np.zeros(20, dtype=bool)
    valid[:3] = True
    with pytest.raises(CalibrationError, match="valid samples"):
        tare(counts, valid)
    assert tare(counts, np.ones(20, dtype=bool)) == pytest.approx(9.5, abs=0.6)


def test_store_round_trip_is_atomic(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "cal" / "calibration.json")
    cals = {0: ChannelCalibration(0, 12345.5, 251.25, 1000.0), 5: ChannelCalibration(5, -3.0, 99.0)}
    store.save(cals)
    assert store.load() == cals
    cals[0] = ChannelCalibration(0, 1.0, 2.0, 500.0)
    store.save(cals)
    assert store.load()[0].counts_per_gram == 2.0
    assert os.listdir(store.path.parent) == ["calibration.json"]  # no temp file left behind


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CalibrationStore(tmp_path / "calibration.json")
    store.save({0: ChannelCalibration(0, 1.0, 100.0)})

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.save({0: ChannelCalibration(0, 2.0, 200.0)})
    monkeypatch.undo()
    assert store.load()[0].counts_per_gram == 100.0
    assert os.listdir(tmp_path) == ["calibration.json"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"version": 99, "channels": []}),
        json.dumps({"version": 1, "channels": [{"channel": 0}]}),
        json.dumps(
            {"version": 1, "channels": [{"channel": 0, "offset_counts": 0, "counts_per_gram": -5}]}
        ),
    ],
)
def test_a_damaged_file_is_a_calibration_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "calibration.json"
    p.write_text(text)
    with pytest.raises(CalibrationError):
        CalibrationStore(p).load()
    with pytest.raises(CalibrationError, match="calibrate first"):
        CalibrationStore(tmp_path / "absent.json").load()
