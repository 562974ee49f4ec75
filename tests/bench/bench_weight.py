"""Weight benchmark: does the signal path find every stock change, and fast enough?

For the ``quiet``, ``busy`` and ``noisy`` scenarios (full: 6 seeds x 1 h each;
``--quick``: 3 seeds x 20 min) the store twin plans a run, the simulated load cells
produce raw counts, a simulated two-point calibration (1 kg on each tray) sets the
scales, and the edge :class:`~edge.signals.WeightPipeline` turns counts into
:class:`~models.types.WeightChange` s. Detections are matched one-to-one to the
twin's :class:`~firmware_bridge.sim.truth.TruthChange` s (same slot, settled within
``[t_start - 2 s, t_end + 6 s]``); truth counted is every stock change of at least
one whole unit of the slot's SKU (expected units ``round(grams / unit_grams)``); a
detection of a smaller truth change (e.g. a light item misplaced on a heavy slot)
is set aside, neither hit nor false alarm. Changes of 0 units (a slot handled, no
unit moved: a unit lifted and set back) are no stock change and are not scored here.
Unit accuracy is scored on changes of the slot's own SKU (removal, return,
restock); a ``misplaced`` foreign item counts for precision and recall but is no
whole number of the slot's units (a 500 g jar on a 200 g slot is 2.5 "units").
A naive detector (mean-filtered weight, fire when it stays half a unit off the last
level for 0.5 s) runs on the same blocks as the baseline. Throughput is simulated
seconds of all channels per wall second of the signal path alone (median of runs).

Run: ``.venv/bin/python -m tests.bench.bench_weight [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edge.signals.calibration import ChannelCalibration
from edge.signals.pipeline import WeightPipeline, whole_units
from edge.signals.replay import pipeline_for, simulated_calibration
from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import Scenario, load_scenario
from firmware_bridge.sim.truth import TruthChange
from firmware_bridge.sim.twin import StoreTwin
from models.types import ReadingBlock, WeightChange

SCENARIOS = ("quiet", "busy", "noisy")
TOL_BEFORE_S = 2.0
TOL_AFTER_S = 6.0
MIN_UNIT_GRAMS = 50.0
OWN_SKU_KINDS = frozenset({"removal", "return", "restock"})
TARGET = 0.99
TARGET_SPEED = 200.0


@dataclass
class Score:
    """Matching figures of one detector on one scenario."""

    truth: int = 0
    detected: int = 0
    matched: int = 0
    unit_scored: int = 0
    units_ok: int = 0

    def add(self, other: Score) -> None:
        self.truth += other.truth
        self.detected += other.detected
        self.matched += other.matched
        self.unit_scored += other.unit_scored
        self.units_ok += other.units_ok

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 1.0

    @property
    def unit_accuracy(self) -> float:
        return self.units_ok / self.unit_scored if self.unit_scored else 1.0


def counted_truth(
    changes: Iterable[TruthChange], scenario: Scenario
) -> tuple[list[tuple[TruthChange, int]], list[TruthChange]]:
    """Stock changes of at least one whole unit of the slot's SKU (with expected units),
    and the rest (smaller changes, faults), which a detection may match without scoring."""
    counted, other = [], []
    for c in changes:
        unit = scenario.slot(c.slot).unit_grams
        if c.kind != "sensor_fault" and abs(c.grams) >= unit and unit >= MIN_UNIT_GRAMS:
            counted.append((c, whole_units(c.grams, unit)))
        else:
            other.append(c)
    return counted, other


def _window(d: WeightChange, c: TruthChange) -> bool:
    return d.slot == c.slot and c.t_start - TOL_BEFORE_S <= d.t_settled <= c.t_end + TOL_AFTER_S


def score(
    detected: Sequence[WeightChange],
    truth: Sequence[tuple[TruthChange, int]],
    other: Sequence[TruthChange] = (),
) -> Score:
    """One-to-one greedy matching by settle time, closest pairs first.

    A detection left over that matches an uncounted truth change (a sub-unit
    misplaced item, a sensor fault) is set aside: neither a hit nor a false alarm.
    """
    pairs = []
    for i, (c, _) in enumerate(truth):
        for j, d in enumerate(detected):
            if _window(d, c):
                pairs.append((abs(d.t_settled - c.t_end), i, j))
    pairs.sort()
    used_t: set[int] = set()
    used_d: set[int] = set()
    s = Score(truth=len(truth))
    for _, i, j in pairs:
        if i in used_t or j in used_d:
            continue
        used_t.add(i)
        used_d.add(j)
        s.matched += 1
        if truth[i][0].kind in OWN_SKU_KINDS:
            s.unit_scored += 1
            s.units_ok += int(detected[j].units == truth[i][1])
    aside = {
        j for j, d in enumerate(detected) if j not in used_d and any(_window(d, c) for c in other)
    }
    s.detected = len(detected) - len(aside)
    return s


class NaiveDetector:
    """Baseline: mean-filtered weight, a change whenever it sits half a unit off for 0.5 s."""

    def __init__(
        self,
        pipe_slots: Sequence[tuple[int, int, float]],
        offsets: np.ndarray,
        scales: np.ndarray,
        sps: int,
    ) -> None:
        self.slots = [s for s, _, _ in pipe_slots]
        self.cols = np.array([c for _, c, _ in pipe_slots])
        self.half = np.array([u / 2 for _, _, u in pipe_slots])
        self.units = np.array([u for _, _, u in pipe_slots])
        self.offsets, self.scales = offsets, scales
        self.d = max(1, sps // 10)
        self.level: np.ndarray | None = None
        self.run_len = np.zeros(len(self.slots), dtype=int)
        self.since = np.zeros(len(self.slots))

    def process(self, block: ReadingBlock) -> list[WeightChange]:
        g = (block.counts[:, self.cols] - self.offsets) / self.scales
        m = len(block) // self.d
        x = g[: m * self.d].reshape(m, self.d, -1).mean(axis=1)
        t = block.t[self.d - 1 : m * self.d : self.d]
        if self.level is None:
            self.level = x[0].copy()
        out: list[WeightChange] = []
        for i in range(m):
            off = np.abs(x[i] - self.level) > self.half
            self.since = np.where(off & (self.run_len == 0), t[i], self.since)
            self.run_len = np.where(off, self.run_len + 1, 0)
            for k in np.flatnonzero(self.run_len >= 5):
                delta = float(x[i, k] - self.level[k])
                out.append(
                    WeightChange(
                        self.slots[k],
                        delta,
                        whole_units(delta, self.units[k]),
                        float(self.since[k]),
                        float(t[i]),
                        0.5,
                    )
                )
                self.level[k] = x[i, k]
                self.run_len[k] = 0
        return out


def _timed(
    make: Callable[[], object], blocks: Sequence[ReadingBlock], repeats: int
) -> tuple[list[WeightChange], float]:
    walls, found = [], []
    for _ in range(repeats):
        det = make()
        t0 = time.perf_counter()
        found = [c for b in blocks for c in det.process(b)]  # type: ignore[attr-defined]
        walls.append(time.perf_counter() - t0)
    return found, statistics.median(walls)


@dataclass
class Row:
    scenario: str
    detector: str
    score: Score
    sim_s: float
    wall_s: float

    @property
    def speed(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s else float("inf")


def run_scenario(name: str, seeds: Sequence[int], duration_s: float, repeats: int) -> list[Row]:
    sc = load_scenario(name)
    rows = {k: Row(name, k, Score(), 0.0, 0.0) for k in ("pipeline", "naive")}
    for seed in seeds:
        run = StoreTwin(sc, seed).simulate(duration_s)
        sim = LoadCellSim(run, sc, seed)
        blocks = list(sim.blocks(1.0))
        cal = simulated_calibration(sim)
        truth, other = counted_truth(run.changes, sc)

        def ours(cal: dict[int, ChannelCalibration] = cal) -> WeightPipeline:
            return pipeline_for(sc, cal)

        def naive(cal: dict[int, ChannelCalibration] = cal) -> NaiveDetector:
            chans = [(s.slot, s.channel, s.unit_grams) for s in sc.slots]
            offs = np.array([cal[c].offset_counts for _, c, _ in chans])
            scl = np.array([cal[c].counts_per_gram for _, c, _ in chans])
            return NaiveDetector(chans, offs, scl, sc.sps)

        for key, make in (("pipeline", ours), ("naive", naive)):
            found, wall = _timed(make, blocks, repeats)
            moved = [c for c in found if c.units != 0]
            rows[key].score.add(score(moved, truth, other))
            rows[key].sim_s += duration_s
            rows[key].wall_s += wall
    return list(rows.values())


def table(rows: Sequence[Row], channels: dict[str, int]) -> str:
    lines = [
        "| scenario | detector | truth | detected | precision | recall | unit accuracy | sim s / wall s (x real time) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        s = r.score
        lines.append(
            f"| {r.scenario} ({channels[r.scenario]} ch) | {r.detector} | {s.truth} | {s.detected} | {s.precision:.4f} | "
            f"{s.recall:.4f} | {s.unit_accuracy:.4f} | {r.speed:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, list[Row]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few simulated minutes per scenario")
    args = ap.parse_args(argv)
    seeds, duration, repeats = (
        ((1, 2, 3), 1200.0, 1) if args.quick else ((1, 2, 3, 4, 5, 6), 3600.0, 3)
    )
    results: dict[str, list[Row]] = {}
    channels = {}
    for name in SCENARIOS:
        results[name] = run_scenario(name, seeds, duration, repeats)
        channels[name] = load_scenario(name).channels
    rows = [r for name in SCENARIOS for r in results[name]]
    mode = "quick" if args.quick else "full"
    print(f"## weight benchmark ({mode}: {len(seeds)} seeds x {duration:.0f} s per scenario)\n")
    print(table(rows, channels))
    print()
    for name in SCENARIOS:
        ours, base = results[name]
        print(
            f"- {name}: pipeline {ours.speed:,.0f}x real time (target {TARGET_SPEED:.0f}x), "
            f"naive {base.speed:,.0f}x; pipeline/naive speed ratio {ours.speed / base.speed:.2f}; "
            f"precision {ours.score.precision:.4f} vs {base.score.precision:.4f}"
        )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
