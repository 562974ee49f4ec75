"""``shelfsense demo``: the loop on the simulator, with the truth beside what was found.

A seeded store twin plays shoppers and staff at one bay; its load cells are read
through the real edge signal path (calibrated from a simulated known weight, never
from the simulator's true scales), and every weight change found is printed next to
the change the twin really made, then scored.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from firmware_bridge.sim.truth import TruthChange
from models.types import WeightChange

MATCH_S = 3.0  # a detection belongs to a truth change that ended within this many seconds


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="run the whole loop on the simulator")
    p.add_argument("--scenario", default="busy", help="simulator scenario (name or TOML path)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.add_argument("--minutes", type=float, default=10.0, help="simulated minutes")
    p.add_argument("--rows", type=int, default=25, help="rows of the change table to print")
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


def _weight_section(scenario_name: str, seed: int, minutes: float, rows: int) -> None:
    from edge.signals.replay import detect_changes
    from firmware_bridge.sim.scenario import load_scenario
    from firmware_bridge.sim.twin import StoreTwin

    scenario = load_scenario(scenario_name)
    run = StoreTwin(scenario, seed).simulate(minutes * 60.0)
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
        ff = f"{f.units:+d} u ({f.grams:+.0f} g) c={f.confidence:.2f}" if f else "missed"
        print(f"{_fmt_time(when):>9}  {slot:>4}  {tt:<22}  {ff:<22}")
    if len(pairs) > rows:
        print(f"   … {len(pairs) - rows} more")
    own = [p for p in pairs if p.truth and p.truth.kind in ("removal", "return", "restock")]
    hits = [p for p in own if p.found]
    exact = [p for p in hits if p.found and p.truth and p.found.units == p.truth.units]
    extra = [p for p in pairs if p.truth is None]
    print()
    print(
        f"   stock changes of the slots' own SKUs: {len(own)}, found {len(hits)}, "
        f"exact unit count {len(exact)}; detections with no truth change: {len(extra)}"
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    _weight_section(args.scenario, args.seed, args.minutes, args.rows)
    return 0
