"""Training data from the real pipeline: simulator -> edge signals -> camera -> windows.

The store twin plans a day (:class:`~firmware_bridge.sim.twin.StoreTwin`); its load
cells give raw counts that the edge signal path turns into weight changes
(``edge.signals``); its camera renders frames that the edge presence detector turns
into presence episodes (``edge.camera``); ``edge.windows`` groups both into windows.
Only then is the simulator's truth used, and only as *labels*: each window takes the
intent of the truth episode it overlaps most (shoppers only), each detected change the
kind of the truth change it matches on the slot and in time (``none`` if it matches
none: a change the truth does not hold). Truth features never enter a window.

The camera is rendered only around the twin's zone visits (with a lead-in for the
background model to learn): empty minutes cost nothing and detect nothing anyway.

``shelfsense sim dataset`` writes the windows as JSON lines (``models.dataset``).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # this module is a CLI part: only the standard library at import time
    from edge.windows import WindowConfig
    from firmware_bridge.sim.truth import Episode, TruthChange, ZoneVisit
    from models.dataset import LabeledWindow
    from models.types import Presence, WeightChange
    from models.window import EventWindow

LEAD_S = 6.0  # camera lead-in before a cluster of visits (background learning)
TAIL_S = 4.0  # camera run-out after a cluster (episodes close)
MATCH_BEFORE_S = 2.0  # a detected change may start this long before the truth handling
MATCH_AFTER_S = 4.0  # ... and this long after it ended


@dataclass
class DatasetStats:
    """What the pipeline found against what the twin did."""

    windows: int = 0
    truth_episodes: int = 0
    truth_changes: int = 0
    detected_changes: int = 0
    matched_changes: int = 0
    presences: int = 0
    interest: Counter[str] = field(default_factory=Counter)
    stock: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        return [
            f"windows: {self.windows} (interest labels {dict(self.interest)})",
            f"presences detected: {self.presences} for {self.truth_episodes} truth episodes",
            f"weight changes detected: {self.detected_changes}, matched {self.matched_changes} "
            f"of {self.truth_changes} truth changes (stock labels {dict(self.stock)})",
        ]


def _clusters(
    visits: Sequence[ZoneVisit], gap: float
) -> list[tuple[float, float, list[ZoneVisit]]]:
    out: list[tuple[float, float, list[ZoneVisit]]] = []
    for v in sorted(visits, key=lambda v: v.t_enter):
        if out and v.t_enter - out[-1][1] <= gap:
            a, b, vs = out[-1]
            out[-1] = (a, max(b, v.t_leave), [*vs, v])
        else:
            out.append((v.t_enter, v.t_leave, [v]))
    return out


def camera_presences(
    visits: Sequence[ZoneVisit], slots: int, *, seed: int, camera: Any = None
) -> list[Presence]:
    """Presence episodes the edge detector finds in simulated frames of ``visits``."""
    from edge.camera.config import CameraConfig
    from edge.camera.presence import PresenceDetector
    from edge.camera.sim import SimulatedSource

    cfg = camera or CameraConfig.model_validate({"default_slots": slots})
    zones = cfg.zone_specs()
    out: list[Presence] = []
    for k, (a, b, vs) in enumerate(_clusters(visits, LEAD_S + TAIL_S)):
        t0 = max(0.0, a - LEAD_S)
        src = SimulatedSource(
            vs,
            zones=zones,
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            seed=seed * 7919 + k,
            t0=t0,
            duration_s=b + TAIL_S - t0,
            shadows=cfg.sim_shadows,
            flicker=cfg.sim_flicker,
            noise=cfg.sim_noise,
        )
        det = PresenceDetector.from_config(cfg)
        src.open()
        while (frame := src.read()) is not None:
            out += det.process(frame)
        out += det.flush()
    return sorted(out, key=lambda p: p.t_enter)


def _interest(w: EventWindow, episodes: Sequence[Episode]) -> str | None:
    from models.labels import INTEREST_LABELS

    p = w.presence
    if p is None:
        return None
    best, best_ov = None, 0.0
    for e in episodes:
        ov = min(p.t_leave, e.t_leave) - max(p.t_enter, e.t_enter)
        if ov > best_ov:
            best, best_ov = e, ov
    if best is None or best.actor != "shopper" or best.intent not in INTEREST_LABELS:
        return None
    return best.intent


def _match_changes(changes: Sequence[WeightChange], truth: Sequence[TruthChange]) -> dict[int, str]:
    """Detected change id -> stock label, each truth change used at most once."""
    from models.labels import STOCK_LABELS

    used: set[int] = set()
    out: dict[int, str] = {}
    for c in sorted(changes, key=lambda c: c.t_start):
        best, best_d = None, math.inf
        for i, tc in enumerate(truth):
            if i in used or tc.slot != c.slot:
                continue
            if not (tc.t_start - MATCH_BEFORE_S <= c.t_start <= tc.t_end + MATCH_AFTER_S):
                continue
            d = abs(c.t_start - tc.t_start) + abs(c.grams - tc.grams) / max(abs(tc.grams), 1.0)
            if d < best_d:
                best, best_d = i, d
        if best is not None:
            used.add(best)
            kind = truth[best].kind
            out[id(c)] = kind if kind in STOCK_LABELS else "none"
        else:
            out[id(c)] = "none"
    return out


def simulate_dataset(
    scenario: str | Path,
    seed: int,
    duration_s: float,
    *,
    camera: Any = None,
    window_config: WindowConfig | None = None,
) -> tuple[list[LabeledWindow], DatasetStats]:
    """Labelled windows of one simulated run of ``scenario``, through the edge pipeline."""
    from edge.signals.replay import detect_changes
    from edge.windows import build_windows
    from firmware_bridge.sim.scenario import load_scenario
    from firmware_bridge.sim.twin import StoreTwin
    from models.dataset import LabeledWindow

    sc = load_scenario(scenario)
    run = StoreTwin(sc, seed).simulate(duration_s)
    changes = detect_changes(run, sc)
    presences = camera_presences(run.visits, len(sc.slots), seed=seed, camera=camera)
    unit_grams = {s.slot: s.unit_grams for s in sc.slots}
    windows = build_windows(
        f"{sc.name}-bay",
        presences,
        changes,
        unit_grams,
        config=window_config,
        initial_units=run.initial_units,
    )
    labels = _match_changes(changes, run.changes)
    stats = DatasetStats(
        truth_episodes=len(run.episodes),
        truth_changes=len(run.changes),
        detected_changes=len(changes),
        presences=len(presences),
    )
    records = []
    for w in windows:
        interest = _interest(w, run.episodes)
        stock = tuple(labels[id(c)] for c in w.changes)
        records.append(LabeledWindow(w, interest, stock))
        stats.interest[str(interest)] += 1
        stats.stock.update(stock)
    stats.windows = len(records)
    stats.matched_changes = sum(1 for v in labels.values() if v != "none")
    return records, stats


def register(sub: Any) -> None:
    """Add ``sim dataset`` under the ``sim`` command group."""
    from firmware_bridge.cli import sim_subcommands

    p = sim_subcommands(sub).add_parser(
        "dataset", help="labelled training windows from the simulated store, as JSON lines"
    )
    p.add_argument("--scenario", default="busy", help="scenario name or TOML path")
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours")
    p.add_argument("--out", type=Path, required=True, help="JSON lines file to write")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from models.dataset import write_jsonl

    records, stats = simulate_dataset(args.scenario, args.seed, args.hours * 3600.0)
    n = write_jsonl(args.out, records)
    print(f"wrote {n} windows to {args.out}")
    for line in stats.lines():
        print("  " + line)
    return 0
