"""Camera benchmark: presence accuracy, throughput and memory on simulated scenarios.

Scenarios are seeded visit schedules (shoppers passing by, glancing, browsing,
reaching into slots) rendered by the simulated camera with shadows, flicker and
noise on. Each frame is rendered once and fed both to the product detector and
to a naive baseline (fixed first-frame background, no gain normalisation, no
shadow handling, same zones and hysteresis). Reported: presence-episode F1
(episodes matched to truth visits per zone within a time tolerance), median
dwell error, processing fps on one core (rendering timed apart) and its ratio
to the 10 fps a unit needs, and RSS over a long run (one hour at 10 fps in full
mode). Run: ``.venv/bin/python -m tests.bench.bench_camera [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import psutil

from edge.camera.background import downscale
from edge.camera.config import CameraConfig
from edge.camera.presence import Hysteresis, PresenceDetector, ZoneTracker
from edge.camera.sim import SimulatedSource
from edge.camera.source import Frame
from edge.camera.zones import ZoneSet, ZoneSpec
from firmware_bridge.sim.truth import ZoneVisit
from models.types import Presence

TOLERANCE_S = 1.0
UNIT_FPS = 10.0


def make_visits(
    seed: int, duration_s: float, *, slots: int = 4, start_s: float = 3.0
) -> list[ZoneVisit]:
    """A seeded schedule of shoppers at one bay: bay visits, with slot reaches inside."""
    rng = random.Random(seed)
    out: list[ZoneVisit] = []
    t = start_s + rng.uniform(0, 5)
    shopper = 0
    intents = ["pass_by", "glance", "browse", "touch", "take"]
    while True:
        intent = rng.choices(intents, [0.3, 0.2, 0.2, 0.15, 0.15])[0]
        if intent == "pass_by":
            d, m = rng.uniform(1.2, 2.5), rng.uniform(0.75, 1.0)
        elif intent == "glance":
            d, m = rng.uniform(2, 6), rng.uniform(0.1, 0.35)
        elif intent == "browse":
            d, m = rng.uniform(6, 25), rng.uniform(0.25, 0.55)
        else:
            d, m = rng.uniform(6, 20), rng.uniform(0.3, 0.6)
        if t + d > duration_s - 3:
            return out
        shopper += 1
        out.append(ZoneVisit(shopper, "bay", t, t + d, m, intent))
        if intent in ("touch", "take", "browse"):
            reaches = rng.randint(0, 1) if intent == "browse" else rng.randint(1, 2)
            s = t + 1.5
            for _ in range(reaches):
                sd = rng.uniform(1.5, 4)
                if s + sd > t + d - 1.5:
                    break
                slot = f"slot-{rng.randrange(slots)}"
                out.append(ZoneVisit(shopper, slot, s, s + sd, rng.uniform(0.4, 0.9), intent))
                s += sd + rng.uniform(2, 4)
        t += d + rng.uniform(3, 15)


@dataclass(frozen=True)
class Score:
    """Episode matching result: counts, F1 and dwell errors of matched pairs."""

    tp: int
    fp: int
    fn: int
    dwell_errors: tuple[float, ...]

    @property
    def f1(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1)

    @property
    def median_dwell_error(self) -> float:
        return statistics.median(self.dwell_errors) if self.dwell_errors else float("nan")

    def __add__(self, other: Score) -> Score:
        return Score(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.dwell_errors + other.dwell_errors,
        )


def score(
    truth: Sequence[ZoneVisit], detected: Sequence[Presence], tol: float = TOLERANCE_S
) -> Score:
    """Match detected episodes to truth visits per zone: both ends within ``tol`` seconds."""
    tp = fp = fn = 0
    errors: list[float] = []
    for zone in sorted({v.zone for v in truth} | {p.zone for p in detected}):
        visits = sorted((v for v in truth if v.zone == zone), key=lambda v: v.t_enter)
        found = sorted((p for p in detected if p.zone == zone), key=lambda p: p.t_enter)
        used: set[int] = set()
        for v in visits:
            hit = next(
                (
                    i
                    for i, p in enumerate(found)
                    if i not in used
                    and abs(p.t_enter - v.t_enter) <= tol
                    and abs(p.t_leave - v.t_leave) <= tol
                ),
                None,
            )
            if hit is None:
                fn += 1
                continue
            used.add(hit)
            tp += 1
            errors.append(abs(found[hit].dwell - (v.t_leave - v.t_enter)))
        fp += len(found) - len(used)
    return Score(tp, fp, fn, tuple(errors))


class NaiveDetector:
    """Baseline: difference to the first frame, fixed threshold, no gain or shadow handling."""

    def __init__(self, zones: Sequence[ZoneSpec], cfg: CameraConfig) -> None:
        self.scale = cfg.process_scale
        self.zones = ZoneSet(zones, cfg.width // self.scale, cfg.height // self.scale)
        h = Hysteresis(cfg.enter_fraction, cfg.leave_fraction, cfg.enter_min_s, cfg.leave_min_s)
        self.trackers = [ZoneTracker(z.name, h) for z in zones]
        self.threshold = cfg.min_diff
        self.background: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.last_t = 0.0

    def process(self, frame: Frame) -> list[Presence]:
        x = downscale(frame.image, self.scale)
        self.last_t = frame.t
        if self.background is None or self.prev is None:
            self.background, self.prev = x, x
            return []
        fg = (np.abs(x - self.background) > self.threshold).astype(np.float32)
        motion = (np.abs(x - self.prev) > self.threshold).astype(np.float32)
        self.prev = x
        occ, mot = self.zones.fractions(fg), self.zones.fractions(motion)
        out = []
        for tr, o, m in zip(self.trackers, occ, mot, strict=True):
            if (p := tr.update(frame.t, float(o), float(m))) is not None:
                out.append(p)
        return out

    def flush(self) -> list[Presence]:
        return [p for tr in self.trackers if (p := tr.flush(self.last_t)) is not None]


@dataclass
class AccuracyResult:
    """Scores of the detector and the baseline over the scenarios, plus frame count."""

    ours: Score
    naive: Score
    frames: int


def run_accuracy(seeds: Sequence[int], duration_s: float) -> AccuracyResult:
    """Render each scenario once; feed the detector and the baseline; score both."""
    ours = naive = Score(0, 0, 0, ())
    frames = 0
    for seed in seeds:
        cfg = CameraConfig(sim_seed=seed)
        visits = make_visits(seed, duration_s, slots=cfg.default_slots)
        src = SimulatedSource.from_config(cfg, visits=visits)
        src.duration_s = duration_s
        det = PresenceDetector.from_config(cfg)
        base = NaiveDetector(cfg.zone_specs(), cfg)
        found: list[Presence] = []
        found_naive: list[Presence] = []
        with src:
            while (frame := src.read()) is not None:
                frames += 1
                found += det.process(frame)
                found_naive += base.process(frame)
        found += det.flush()
        found_naive += base.flush()
        ours = ours + score(visits, found)
        naive = naive + score(visits, found_naive)
    return AccuracyResult(ours, naive, frames)


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) spent in ``fn``."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def run_throughput(frames: int, seed: int = 99) -> dict[str, float]:
    """Frames per second of CPU time (one core's worth): rendering, detector, baseline apart."""
    cfg = CameraConfig(sim_seed=seed)
    visits = make_visits(seed, frames / cfg.fps + 10)
    src = SimulatedSource.from_config(cfg, visits=visits)
    rendered: list[Frame] = []

    def render() -> None:
        with src:
            rendered.extend(f for _ in range(frames) if (f := src.read()) is not None)

    def feed(det: PresenceDetector | NaiveDetector) -> Callable[[], None]:
        def go() -> None:
            for f in rendered:
                det.process(f)

        return go

    _, render_cpu = _timed(render)
    ours_wall, ours_cpu = _timed(feed(PresenceDetector.from_config(cfg)))
    _, naive_cpu = _timed(feed(NaiveDetector(cfg.zone_specs(), cfg)))
    n = len(rendered)
    return {
        "render_fps": n / render_cpu,
        "ours_fps": n / ours_cpu,
        "ours_wall_fps": n / ours_wall,
        "naive_fps": n / naive_cpu,
    }


def run_memory(duration_s: float, samples: int = 12, seed: int = 5) -> dict[str, float]:
    """RSS (MiB) at start, end and peak over a long simulated run, and frames held."""
    proc = psutil.Process()
    cfg = CameraConfig(sim_seed=seed)
    visits = make_visits(seed, duration_s)
    src = SimulatedSource.from_config(cfg, visits=visits)
    src.duration_s = duration_s
    det = PresenceDetector.from_config(cfg)
    total = src.frames_total
    every = max(total // samples, 1)
    rss: list[float] = []
    episodes = 0
    with src:
        i = 0
        while (frame := src.read()) is not None:
            episodes += len(det.process(frame))
            if i % every == 0:
                rss.append(proc.memory_info().rss / 2**20)
            i += 1
    rss.append(proc.memory_info().rss / 2**20)
    return {
        "frames": float(total),
        "start_mib": rss[1] if len(rss) > 1 else rss[0],
        "end_mib": rss[-1],
        "peak_mib": max(rss),
        "episodes": float(episodes),
        "frames_held": 1.0,  # the previous reduced frame, for differencing
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print a markdown table, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    seeds: tuple[int, ...]
    if args.quick:
        seeds, duration, tp_frames, mem_s = (1, 2), 240.0, 600, 120.0
    else:
        seeds, duration, tp_frames, mem_s = (1, 2, 3, 4, 5, 6), 900.0, 3000, 3600.0
    mem = run_memory(mem_s)  # first, so that RSS is not the throughput run's frame list
    acc = run_accuracy(seeds, duration)
    tput = run_throughput(tp_frames)
    o, n = acc.ours, acc.naive
    print(f"\n### camera bench ({'quick' if args.quick else 'full'})\n")
    print(f"scenarios: seeds {list(seeds)} x {duration:g} s, shadows + flicker + noise on")
    print(f"frames scored: {acc.frames}; match tolerance {TOLERANCE_S:g} s\n")
    print("| figure | detector | naive baseline |")
    print("| --- | --- | --- |")
    print(f"| episode F1 | {o.f1:.3f} | {n.f1:.3f} |")
    print(f"| tp / fp / fn | {o.tp} / {o.fp} / {o.fn} | {n.tp} / {n.fp} / {n.fn} |")
    print(f"| median dwell error, s | {o.median_dwell_error:.2f} | {n.median_dwell_error:.2f} |")
    print(
        f"| processing fps per CPU-second (1 core) | {tput['ours_fps']:.0f}"
        f" | {tput['naive_fps']:.0f} |"
    )
    print(f"| processing fps, wall clock | {tput['ours_wall_fps']:.0f} | |")
    print(
        f"| ratio to {UNIT_FPS:g} fps | {tput['ours_fps'] / UNIT_FPS:.0f}x |"
        f" {tput['naive_fps'] / UNIT_FPS:.0f}x |"
    )
    print(f"| rendering fps per CPU-second (sim, apart) | {tput['render_fps']:.0f} | |")
    print(
        f"| memory run {mem_s:g} s ({mem['frames']:.0f} frames): RSS start/end/peak MiB |"
        f" {mem['start_mib']:.1f} / {mem['end_mib']:.1f} / {mem['peak_mib']:.1f} | |"
    )
    print(f"| frames held by the detector | {mem['frames_held']:.0f} | |")
    return {"accuracy": acc, "throughput": tput, "memory": mem}


if __name__ == "__main__":
    main(sys.argv[1:])
