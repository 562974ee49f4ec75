"""The weight signal path on synthetic signals: steps, creep, drift, glitches, dropouts."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import parse_config
from edge.errors import CalibrationError, ConfigError
from edge.signals import (
    ChannelCalibration,
    SignalsConfig,
    SlotSignal,
    WeightPipeline,
    slot_signals,
    whole_units,
)
from models.types import ReadingBlock, WeightChange

SPS = 80
SCALES = np.array([250.0, 120.0, 480.0])
OFFSETS = np.array([150_000.0, -60_000.0, 2_000.0])


def cals() -> dict[int, ChannelCalibration]:
    return {c: ChannelCalibration(c, OFFSETS[c], SCALES[c]) for c in range(3)}


def blocks_from(
    grams: np.ndarray, block_n: int = 80, valid: np.ndarray | None = None, sps: int = SPS
) -> list[ReadingBlock]:
    n, ch = grams.shape
    counts = np.rint(OFFSETS[:ch] + SCALES[:ch] * grams).astype(np.int32)
    valid = np.ones((n, ch), dtype=bool) if valid is None else valid
    counts = np.where(valid, counts, -1).astype(np.int32)
    t = np.arange(n) / sps
    return [
        ReadingBlock(t[a : a + block_n], counts[a : a + block_n], valid[a : a + block_n])
        for a in range(0, n, block_n)
    ]


def handle(
    level_before: float,
    level_after: float,
    seconds: float,
    rng: np.random.Generator,
    sps: int = SPS,
) -> np.ndarray:
    """A hand on the shelf: the load moves from one level to the other, pressed and jiggled."""
    n = int(seconds * sps)
    x = np.linspace(0, 1, n)
    press = 80 * np.sin(np.pi * x) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * x * seconds))
    return np.where(x < 0.5, level_before, level_after) + press + rng.normal(0, 1, n)


def steady(
    level: float, seconds: float, rng: np.random.Generator, noise: float = 0.5, sps: int = SPS
) -> np.ndarray:
    return level + rng.normal(0, noise, int(seconds * sps))


def run(
    grams: np.ndarray,
    units: list[float],
    block_n: int = 80,
    config: SignalsConfig | None = None,
    valid: np.ndarray | None = None,
    sps: int = SPS,
) -> list[WeightChange]:
    slots = [SlotSignal(10 + i, i, u) for i, u in enumerate(units)]
    pipe = WeightPipeline(slots, cals(), sps=sps, config=config)
    return pipe.run(blocks_from(grams, block_n, valid, sps))


def test_a_step_settles_into_one_change_with_whole_units() -> None:
    rng = np.random.default_rng(1)
    g = np.concatenate([steady(1000, 10, rng), handle(1000, 500, 3, rng), steady(500, 10, rng)])[
        :, None
    ]
    (c,) = run(g, [250.0])
    assert c.slot == 10 and c.units == -2
    assert c.grams == pytest.approx(-500, abs=2)
    assert 9.5 <= c.t_start <= 10.3  # when the hand arrived
    assert 13.0 <= c.t_settled <= 15.0  # after it left and the weight held still
    assert c.confidence > 0.8


def test_lifted_and_put_back_is_a_change_of_no_units() -> None:
    rng = np.random.default_rng(2)
    g = np.concatenate([steady(800, 5, rng), handle(800, 800, 4, rng), steady(800, 5, rng)])[
        :, None
    ]
    (c,) = run(g, [200.0])
    assert c.units == 0 and abs(c.grams) < 6.0  # handled, nothing moved
    assert 4.0 <= c.t_start <= 5.5 and c.t_settled >= 9.0
    assert run(g, [200.0], config=SignalsConfig(touch_g=0)) == []  # reporting them is optional


def test_a_nudge_below_touch_g_is_no_change() -> None:
    rng = np.random.default_rng(12)
    n = 2 * SPS
    nudge = 15 * np.sin(np.pi * np.linspace(0, 1, n)) + rng.normal(0, 0.5, n)
    g = np.concatenate([steady(800, 5, rng), 800 + nudge, steady(800, 5, rng)])[:, None]
    assert run(g, [200.0]) == []  # left the stable band, never came 25 g from it
    nudged = run(g, [200.0], config=SignalsConfig(touch_g=10))
    assert nudged and all(c.units == 0 for c in nudged)


def test_below_half_a_unit_moves_no_units_above_is_one() -> None:
    rng = np.random.default_rng(3)
    small = np.concatenate([steady(300, 5, rng), handle(300, 280, 2, rng), steady(280, 5, rng)])
    big = np.concatenate([steady(300, 5, rng), handle(300, 270, 2, rng), steady(270, 5, rng)])
    (c,) = run(small[:, None], [50.0])  # the hand pressed 80 g: handled, no unit moved
    assert c.units == 0 and -25 < c.grams < -15
    (c,) = run(big[:, None], [50.0])
    assert c.units == -1 and c.confidence < 0.5  # 0.6 of a unit fits badly


@pytest.mark.parametrize(
    ("grams", "unit", "expected"),
    [
        (-75.0, 50.0, -2),
        (75.0, 50.0, 2),
        (74.9, 50.0, 1),
        (-24.9, 50.0, 0),
        (25.0, 50.0, 1),
        (1499.0, 1500.0, 1),
        (0.0, 10.0, 0),
    ],
)
def test_whole_units_rounds_halves_away_from_zero(grams: float, unit: float, expected: int) -> None:
    assert whole_units(grams, unit) == expected


def drifting(seconds: float, rng: np.random.Generator, noise: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SPS)) / SPS
    drift = 30 * np.sin(2 * np.pi * t / 1200)  # temperature
    creep = 10 * (1 - np.exp(-t / 120))  # after the last restock
    walk = np.cumsum(rng.normal(0, 0.1 / np.sqrt(SPS), t.size))
    g = 2000 + drift + creep + walk + rng.normal(0, noise, t.size)
    spikes = rng.integers(0, t.size, 40)
    g[spikes] += rng.choice([-800, 800], 40)
    return g


def test_no_phantom_changes_on_a_quiet_drifting_channel() -> None:
    rng = np.random.default_rng(4)
    g = drifting(1800, rng)[:, None]
    pipe = WeightPipeline([SlotSignal(0, 0, 50.0)], cals(), sps=SPS)
    assert pipe.run(blocks_from(g)) == []
    # the baseline followed the drift: it sits at the weight the channel reads now
    assert pipe.levels()[0] == pytest.approx(float(np.median(g[-SPS:])), abs=2.0)


def test_drift_does_not_hide_a_real_change() -> None:
    rng = np.random.default_rng(5)
    g = drifting(600, rng)
    g[300 * SPS : 303 * SPS] = handle(g[300 * SPS], g[300 * SPS] - 50, 3, rng)
    g[303 * SPS :] -= 50
    (c,) = run(g[:, None], [50.0])
    assert c.units == -1 and c.grams == pytest.approx(-50, abs=4)


def test_any_block_size_gives_the_same_changes() -> None:
    rng = np.random.default_rng(6)
    g = np.stack(
        [
            np.concatenate([steady(500, 5, rng), handle(500, 100, 3, rng), steady(100, 6, rng)]),
            np.concatenate([steady(90, 7, rng), handle(90, 390, 2, rng), steady(390, 5, rng)]),
            np.concatenate([steady(10, 3, rng), handle(10, 10, 2, rng), steady(10, 9, rng)]),
        ],
        axis=1,
    )
    ref = run(g, [100.0, 150.0, 60.0], block_n=80)
    assert [(c.slot, c.units) for c in ref] == [(12, 0), (10, -4), (11, 2)]
    for n in (1, 7, 13, 333, len(g)):
        got = run(g, [100.0, 150.0, 60.0], block_n=n)
        assert [(c.slot, c.units, c.t_start, c.t_settled) for c in got] == [
            (c.slot, c.units, c.t_start, c.t_settled) for c in ref
        ]
        assert [c.grams for c in got] == pytest.approx([c.grams for c in ref], abs=0.02)


def test_invalid_samples_are_skipped() -> None:
    rng = np.random.default_rng(7)
    g = np.concatenate([steady(700, 10, rng), steady(700, 10, rng), steady(700, 10, rng)])[:, None]
    valid = np.ones(g.shape, dtype=bool)
    valid[10 * SPS : 20 * SPS] = False  # disconnected: counts are garbage
    assert run(g, [100.0], valid=valid) == []
    # a unit taken while the channel was away shows up once it is back
    g[12 * SPS :] -= 100
    valid[5 * SPS : 5 * SPS + 40 : 3] = False  # scattered dropouts too
    (c,) = run(g, [100.0], valid=valid)
    assert c.units == -1 and c.t_settled >= 20


def test_channels_map_to_slots() -> None:
    rng = np.random.default_rng(8)
    g = np.stack(
        [
            steady(100, 8, rng),
            np.concatenate([steady(400, 3, rng), handle(400, 0, 2, rng), steady(0, 3, rng)]),
        ],
        axis=1,
    )
    counts_blocks = blocks_from(g)
    pipe = WeightPipeline([SlotSignal(7, 1, 400.0), SlotSignal(3, 0, 100.0)], cals(), sps=SPS)
    (c,) = pipe.run(counts_blocks)
    assert c.slot == 7 and c.units == -1
    levels = pipe.levels()
    assert levels[7] == pytest.approx(0, abs=2) and levels[3] == pytest.approx(100, abs=2)


def test_ten_sps_input_works() -> None:
    rng = np.random.default_rng(9)
    g = np.concatenate(
        [steady(600, 6, rng, sps=10), handle(600, 300, 3, rng, sps=10), steady(300, 6, rng, sps=10)]
    )[:, None]
    (c,) = run(g, [300.0], block_n=10, sps=10)
    assert c.units == -1


def test_a_change_that_never_settles_is_closed_with_low_confidence() -> None:
    rng = np.random.default_rng(10)
    g = np.concatenate(
        [steady(500, 3, rng), 250 + 50 * np.sin(np.arange(40 * SPS) / 9.0), steady(250, 3, rng)]
    )[:, None]
    changes = run(g, [250.0], config=SignalsConfig(max_change_s=10))
    assert changes and changes[0].confidence <= 0.5 and changes[0].t_settled < 25


def test_missing_calibration_and_config_bounds() -> None:
    with pytest.raises(CalibrationError, match="channel"):
        WeightPipeline([SlotSignal(0, 9, 100.0)], cals(), sps=SPS)
    with pytest.raises(ValidationError):
        SignalsConfig(settle_s=0)
    with pytest.raises(ValidationError):
        SignalsConfig(window=3)  # type: ignore[call-arg]
    cfg = parse_config(
        {
            "signals": {"stable_band_g": 4.0},
            "slots": [{"slot": 1, "channel": 2, "sku": "X", "unit_grams": 75}],
        }
    )
    assert cfg.signals.stable_band_g == 4.0
    assert slot_signals(cfg.slots) == [SlotSignal(1, 2, 75.0)]
    with pytest.raises(ConfigError, match=r"signals\.bogus"):
        parse_config({"signals": {"bogus": 1}})
