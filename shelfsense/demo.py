"""``shelfsense demo``: the loop on the simulator, with the truth beside what was found.

A seeded store twin plays shoppers and staff at one bay. Its load cells are read
through the real edge signal path (calibrated from a simulated known weight, never
from the simulator's true scales) and every weight change found is printed next to
the change the twin really made; its camera frames go through the presence detector
and the episodes found are shown on the same timeline as the weight changes.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_bridge.sim.truth import TruthChange
from models.types import Presence, WeightChange

if TYPE_CHECKING:
    from firmware_bridge.sim.scenario import Scenario
    from firmware_bridge.sim.twin import SimRun

MATCH_S = 3.0  # a detection belongs to a truth change that ended within this many seconds


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="run the whole loop on the simulator")
    p.add_argument("--scenario", default="busy", help="simulator scenario (name or TOML path)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.add_argument("--minutes", type=float, default=10.0, help="simulated minutes")
    p.add_argument("--rows", type=int, default=25, help="rows of the change table to print")
    p.add_argument(
        "--no-loop",
        action="store_true",
        help="only the sensing part: skip training, the cloud and the unit",
    )
    p.add_argument("--work", type=Path, help="keep the model, cloud and unit files here")
    p.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class Pairing:
    """A truth change and the detection matched to it (either may be missing)."""

    truth: TruthChange | None
    found: WeightChange | None


def pair_changes(truth: list[TruthChange], found: list[WeightChange]) -> list[Pairing]:
    """Match detections to truth changes one to one: same slot, settled near the truth's end."""
    free = sorted(found, key=lambda c: c.t_settled)
    pairs: list[Pairing] = []
    for t in sorted(truth, key=lambda c: c.t_end):
        best = None
        for f in free:
            near = f.slot == t.slot and t.t_start - MATCH_S <= f.t_settled <= t.t_end + MATCH_S
            if near and (best is None or abs(f.grams - t.grams) < abs(best.grams - t.grams)):
                best = f
        if best is not None:
            free.remove(best)
        pairs.append(Pairing(t, best))
    pairs.extend(Pairing(None, f) for f in free)
    return sorted(pairs, key=lambda p: p.truth.t_end if p.truth else p.found.t_settled)  # type: ignore[union-attr]


def _fmt_time(t: float) -> str:
    m, s = divmod(t, 60.0)
    return f"{int(m):02d}:{s:05.2f}"


def _weight_section(run: SimRun, scenario: Scenario, rows: int) -> list[WeightChange]:
    from edge.signals.replay import detect_changes

    seed, minutes = run.seed, run.duration_s / 60.0
    found = detect_changes(run, scenario)
    pairs = pair_changes(run.changes, found)
    print(f"== Weight: scenario {scenario.name!r}, seed {seed}, {minutes:g} simulated minutes")
    print(
        f"   {len(scenario.slots)} slots, {scenario.sps} SPS; {len(run.episodes)} visits to the bay"
    )
    print()
    print(f"{'time':>9}  {'slot':>4}  {'truth':<22}  {'found':<22}  ")
    for p in pairs[:rows]:
        t = p.truth
        f = p.found
        when = t.t_end if t else f.t_settled  # type: ignore[union-attr]
        slot = t.slot if t else f.slot  # type: ignore[union-attr]
        tt = f"{t.kind} {t.units:+d} ({t.grams:+.0f} g)" if t else "-"
        if t is None and f is not None and f.units == 0:
            tt = "- (handled only)"
        ff = f"{f.units:+d} u ({f.grams:+.0f} g) c={f.confidence:.2f}" if f else "missed"
        print(f"{_fmt_time(when):>9}  {slot:>4}  {tt:<22}  {ff:<22}")
    if len(pairs) > rows:
        print(f"   … {len(pairs) - rows} more")
    own = [p for p in pairs if p.truth and p.truth.kind in ("removal", "return", "restock")]
    hits = [p for p in own if p.found]
    exact = [p for p in hits if p.found and p.truth and p.found.units == p.truth.units]
    loose = [p.found for p in pairs if p.truth is None and p.found is not None]
    handled = [f for f in loose if f.units == 0]
    print()
    print(
        f"   stock changes of the slots' own SKUs: {len(own)}, found {len(hits)}, "
        f"exact unit count {len(exact)}; slots handled with no unit moved: {len(handled)}; "
        f"other detections with no truth change: {len(loose) - len(handled)}"
    )
    return found


def _presence_section(
    run: SimRun, scenario: Scenario, found: list[WeightChange], rows: int
) -> None:
    from edge.camera.config import CameraConfig
    from edge.camera.presence import PresenceDetector
    from edge.camera.sim import SimulatedSource

    cfg = CameraConfig(default_slots=len(scenario.slots))
    source = SimulatedSource.from_config(cfg, visits=run.visits)
    source.duration_s = run.duration_s
    detector = PresenceDetector.from_config(cfg)
    episodes: list[Presence] = []
    source.open()
    while (frame := source.read()) is not None:
        episodes.extend(detector.process(frame))
    episodes.extend(detector.flush(run.duration_s))
    source.close()
    at_bay = sorted((p for p in episodes if p.zone == "bay"), key=lambda p: p.t_enter)
    truth = sorted((v for v in run.visits if v.zone == "bay"), key=lambda v: v.t_enter)
    stretches: list[list[float]] = []  # overlapping people are one occupied stretch
    for v in truth:
        if stretches and v.t_enter <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], v.t_leave)
        else:
            stretches.append([v.t_enter, v.t_leave])
    print()
    print(
        f"== Camera: {source.frames_total} simulated frames at {cfg.width}x{cfg.height}, "
        f"{cfg.fps:g} fps (shadows, flicker, noise); no frame is kept"
    )
    print(
        f"   people at the bay: {len(truth)} visits in truth, {len(stretches)} occupied "
        f"stretches once overlapping people merge; {len(at_bay)} presence episodes found "
        f"(and {len(episodes) - len(at_bay)} reaches into slot zones)"
    )
    print()
    print(f"{'time':>9}  {'what':<9}  detail")
    timeline: list[tuple[float, str, str]] = [
        (
            p.t_enter,
            "presence",
            f"dwell {p.dwell:5.1f} s, peak motion {p.peak_motion:.2f}, "
            f"{p.entries} entr{'y' if p.entries == 1 else 'ies'}",
        )
        for p in at_bay
    ]
    timeline += [
        (c.t_start, "weight", f"slot {c.slot}: {c.units:+d} u ({c.grams:+.0f} g)") for c in found
    ]
    timeline.sort()
    for t, what, detail in timeline[:rows]:
        print(f"{_fmt_time(t):>9}  {what:<9}  {detail}")
    if len(timeline) > rows:
        print(f"   … {len(timeline) - rows} more")


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from firmware_bridge.sim.scenario import load_scenario
    from firmware_bridge.sim.twin import StoreTwin

    scenario = load_scenario(args.scenario)
    sim_run = StoreTwin(scenario, args.seed).simulate(args.minutes * 60.0)
    found = _weight_section(sim_run, scenario, args.rows)
    _presence_section(sim_run, scenario, found, args.rows)
    if args.no_loop:
        return 0
    from shelfsense.demo_loop import run_unit, train_bundle_for_demo

    print()
    with tempfile.TemporaryDirectory(prefix="shelfsense-demo-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bundle, pub = train_bundle_for_demo(work, scenario.name, args.seed)
        run_unit(work / "unit", bundle, pub, scenario.name, args.seed, args.minutes)
    return 0
