"""A stuck ADC: frozen codes stop counting, and what moved meanwhile is reported once."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge.signals import SignalsConfig, SlotSignal, WeightPipeline
from edge.signals.stuck import StuckFilter
from models.types import ReadingBlock, WeightChange
from tests.edge.test_signals_pipeline import OFFSETS, SCALES, SPS, cals, handle, steady


def frozen_run(
    g: np.ndarray, units: list[float], cfg: SignalsConfig, freeze: tuple[int, int] | None = None
) -> tuple[list[WeightChange], WeightPipeline, list[list[int]]]:
    """Changes of ``g`` with every channel's code frozen over ``freeze`` (sample indices),
    the pipeline, and the stuck channels it named after each block."""
    n, ch = g.shape
    counts = np.rint(OFFSETS[:ch] + SCALES[:ch] * g).astype(np.int32)
    if freeze is not None:
        a, b = freeze
        counts[a:b] = counts[a]
    t = np.arange(n) / SPS
    valid = np.ones((n, ch), dtype=bool)
    pipe = WeightPipeline(
        [SlotSignal(10 + i, i, u) for i, u in enumerate(units)], cals(), sps=SPS, config=cfg
    )
    out: list[WeightChange] = []
    named: list[list[int]] = []
    for a in range(0, n, SPS):
        out += pipe.process(ReadingBlock(t[a : a + SPS], counts[a : a + SPS], valid[a : a + SPS]))
        named.append(pipe.stuck_channels())
    return out, pipe, named


def reference(codes: np.ndarray, valid: np.ndarray, n: int) -> tuple[np.ndarray, list[int]]:
    """Sample by sample: invalid once more than ``n`` identical codes ran."""
    out = valid.copy()
    episodes = [0] * codes.shape[1]
    for lane in range(codes.shape[1]):
        length, was = 0, False
        for i, c in enumerate(codes[:, lane]):
            length = length + 1 if i and c == codes[i - 1, lane] else 1
            now = length > n
            episodes[lane] += now and not was
            was = now
            out[i, lane] &= not now
    return out, episodes


@given(
    codes=st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    n=st.integers(2, 6),
)
def test_any_block_split_clears_the_samples_a_sample_by_sample_count_would(
    codes: list[list[int]], cuts: list[int], n: int
) -> None:
    c = np.array(codes, dtype=np.int32)
    valid = (c % 3 != 1) | (np.arange(len(c))[:, None] % 2 == 0)  # some invalid samples too
    want, episodes = reference(c, valid, n)
    f = StuckFilter(2, n)
    bounds = sorted({0, len(c), *(x for x in cuts if x < len(c))})
    got = np.concatenate([f.push(c[a:b], valid[a:b]) for a, b in itertools.pairwise(bounds)])
    assert (got == want).all()
    assert f.episodes.tolist() == episodes


def frozen_mid_lift(stuck_s: float) -> tuple[list[WeightChange], list[list[int]]]:
    """A unit lifted off a 100 g slot while the ADC freezes halfway; it answers 30 s later."""
    rng = np.random.default_rng(5)
    g = np.concatenate([steady(700, 10, rng), handle(700, 600, 3, rng), steady(600, 40, rng)])
    out, _, named = frozen_run(
        g[:, None], [100.0], SignalsConfig(stuck_s=stuck_s), freeze=(int(11.2 * SPS), 42 * SPS)
    )
    return out, named


def test_a_cell_frozen_halfway_through_a_lift_reports_the_unit_once_it_answers() -> None:
    changes, named = frozen_mid_lift(0.25)
    (c,) = changes
    assert c.units == -1 and abs(c.grams + 100) < 3
    assert c.t_start < 11.2 and c.t_settled > 42  # from the last quiet level to the true one
    assert named[15] == [0] and named[-1] == []  # named while frozen, not after
    # without the filter the frozen halfway weight settles as a change of its own, and
    # the true load comes back later as a second one, a step as if from nowhere
    old, _ = frozen_mid_lift(0.0)
    assert len(old) == 2 and old[0].units == 0 and old[0].t_settled < 42
    assert old[1].t_start > 41.5 and old[1].grams < -100


def test_the_weight_worker_reports_a_stuck_channel_in_health_until_it_answers() -> None:
    from edge.health import Health
    from edge.workers.timeline import Inbox
    from edge.workers.weight import WeightWorker
    from tests.edge.test_signals_pipeline import blocks_from

    rng = np.random.default_rng(11)
    g = np.stack([steady(500, 6, rng), steady(300, 6, rng)], axis=1)
    pipe = WeightPipeline([SlotSignal(0, 0, 100.0), SlotSignal(1, 1, 100.0)], cals(), sps=SPS)
    health = Health()
    worker = WeightWorker(lambda stop: [], pipe, Inbox(["weight"]), health=health)
    blocks = blocks_from(g)
    blocks[4].counts[:, 1] = blocks[4].counts[0, 1]  # channel 1 repeats one code for a second
    seen = []
    for b in blocks:
        worker.step(b)
        seen.append(health.snapshot()["components"]["loadcells"])
    assert seen[3] == {**seen[3], "ok": True, "detail": "2/2 channels"}
    assert (
        seen[4]["ok"] is False and seen[4]["detail"] == "1/2 channels, stuck (one code repeated): 1"
    )
    assert seen[5]["ok"] is True  # answering again
