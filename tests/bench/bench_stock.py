"""Stock levels the backend would read against the store twin's truth, slot by slot, minute by minute.

For each scenario a simulated unit (sim load cells and camera, the rules deciding)
plays ``--hours`` in process with sync off; its committed events are read back from
its buffer in seq order, as the cloud keeps them (a slot's figure is that of its
highest seq so far). At every whole minute each slot's figure is held against the
units of its own SKU the twin really had there:

- *truth*: the scenario's fill, moved by every ``removal``/``return``/``restock`` of
  the slot's own SKU once its handling has ended (``t_end``). A ``misplaced`` item is a
  foreign SKU: it never counts as the slot's stock. A minute that falls within
  ``GRACE_S`` after a handling on the slot ended, or during one, is not scored: the
  weight is still settling and neither answer is wrong yet.
- *unit*: the ``stock_units`` of the slot's newest event (stock, level or report) with
  ``mono_time`` (the sensor time the figure refers to) at or before the minute. A slot
  with no figure yet counts as wrong.

Scored: share of slot-minutes exact, mean absolute error, ``out`` events when the
truth had units (false), stock-outs of the truth that no ``out`` event reported
(missed) and the delay from a real stock-out to its ``out`` event. *Before* replays
the same decided events through the count the unit kept before counts came from the
scale: the twin's fill as the start, then each label moving ``abs(units)`` (``removal``
down, ``return``/``restock`` up).

After the table, the wrong slot-minutes of the count from the scale by cause
(:mod:`tests.bench.stock_diagnosis`: misplaced-as-stock, unsettled,
calibration/drift, no figure, other).

With ``--model`` a student is trained first the way ``make demo`` does (see
:mod:`tests.bench.stock_model`; ``--bundle DIR --key PEM`` uses one already made) and
each scenario runs a second time with the bundle installed on the unit: the ``model``
rows, and a table of who decided the stock events and how many the book relabelled.

Run: ``.venv/bin/python -m tests.bench.bench_stock [--hours 0.5] [--seed 3] [--scenarios busy,heldout] [--model]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.agent import Agent
from edge.config import parse_config
from edge.workers.build import add_sensing
from firmware_bridge.sim.scenario import load_scenario
from firmware_bridge.sim.twin import SimRun
from tests.bench.stock_diagnosis import DIAGNOSIS_HEADER, diagnose, diagnosis_row
from tests.bench.stock_model import Bundle, bundle_for_bench, decisions
from tests.support.waiting import wait_until

SCENARIOS = ("busy", "faulty", "heldout", "mixed")
OWN = frozenset({"removal", "return", "restock"})
GRACE_S = 10.0  # a minute this soon after a handling ended is not scored
OUT_MATCH_S = 120.0  # an out event this long after a real stock-out reports it


@dataclass
class Score:
    """One scenario, one way of counting."""

    scored: int = 0
    exact: int = 0
    abs_err: int = 0
    false_out: int = 0
    missed_out: int = 0
    stockouts: int = 0
    delays: list[float] | None = None

    def row(self, name: str, how: str) -> str:
        d = sorted(self.delays or [])
        delay = f"{d[len(d) // 2]:.1f}" if d else "-"
        share = 100.0 * self.exact / self.scored if self.scored else 0.0
        mae = self.abs_err / self.scored if self.scored else 0.0
        return (
            f"| {name} | {how} | {self.scored} | {share:.1f} % | {mae:.3f} | {self.false_out} "
            f"| {self.missed_out}/{self.stockouts} | {delay} |"
        )


def play(
    scenario: str, seed: int, hours: float, tmp: Path, bundle: Bundle | None = None
) -> tuple[list[dict[str, Any]], SimRun]:
    """The unit's committed events in seq order, and the twin's run.

    With ``bundle`` the unit installs it as the agent does (``model.bundle_dir`` and
    ``model.trusted_key``) and the student decides; without, the rules do.
    """
    raw: dict[str, Any] = {
        "unit": {"device_id": "bench-stock", "data_dir": str(tmp)},
        "loadcells": {"source": "sim", "sim_scenario": scenario, "sim_seed": seed},
        "camera": {"source": "sim", "width": 160, "height": 120},
        "sync": {"mode": "off"},
        "health": {"interval_s": 5.0},
    }
    if bundle is not None and bundle.path is not None:
        raw["model"] = {"bundle_dir": str(bundle.path), "trusted_key": str(bundle.key)}
    cfg = parse_config(raw)
    agent = Agent(cfg)
    sensing = add_sensing(agent, speed=0, sim_hours=hours)
    agent.start()
    try:
        wait_until(lambda: agent.health.get("sim_done") is True, timeout=3600, poll=0.2)
    finally:
        agent.stop()
    conn = sqlite3.connect(str(tmp / cfg.buffer.file))
    try:
        bodies = [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
    finally:
        conn.close()
    assert sensing.run is not None
    return bodies, sensing.run


def truth_changes(run: SimRun) -> dict[int, list[tuple[float, float, int]]]:
    """``(t_start, t_end, units)`` of each own-SKU change per slot, in time order."""
    out: dict[int, list[tuple[float, float, int]]] = {s: [] for s in run.initial_units}
    for c in sorted(run.changes, key=lambda c: c.t_end):
        if c.kind in OWN:
            out[c.slot].append((c.t_start, c.t_end, c.units))
    return out


def before_figures(events: Sequence[dict[str, Any]], run: SimRun) -> list[dict[str, Any]]:
    """The same events with the figure the label-driven count gave (the old stock book)."""
    units = dict(run.initial_units)
    out = []
    for e in events:
        if e["kind"] != "stock" or e.get("slot") is None:
            continue
        n, s = abs(int(e.get("units") or 0)), int(e["slot"])
        move = -n if e["label"] == "removal" else n if e["label"] in ("return", "restock") else 0
        units[s] = max(0, units[s] + move)
        out.append({**e, "stock_units": units[s]})
    return out


def score(figures: Sequence[dict[str, Any]], run: SimRun, *, outs: bool = True) -> Score:
    """Slot-minutes exact, MAE and out events of ``figures`` (in seq order) against the truth."""
    changes = truth_changes(run)
    per_slot: dict[int, list[tuple[float, int]]] = {s: [] for s in run.initial_units}
    for e in figures:
        if e.get("slot") is not None and e.get("stock_units") is not None:
            per_slot.setdefault(int(e["slot"]), []).append(
                (float(e["mono_time"]), int(e["stock_units"]))
            )
    sc = Score(delays=[])
    minutes = int(run.duration_s // 60)
    for slot, start in run.initial_units.items():
        ch = changes[slot]
        figs = per_slot.get(slot, [])
        for m in range(1, minutes + 1):
            t = m * 60.0
            if any(t0 <= t <= t1 + GRACE_S for t0, t1, _ in ch):
                continue  # in a handling, or settling after it
            truth = start + sum(u for _, t1, u in ch if t1 <= t)
            # the cloud's figure: highest seq among those referring to a time up to t
            got = [u for tf, u in figs if tf <= t]
            sc.scored += 1
            if got and got[-1] == truth:
                sc.exact += 1
            sc.abs_err += abs((got[-1] if got else 0) - truth)
    if outs:
        _outs(figures, run, changes, sc)
    return sc


def _outs(
    figures: Sequence[dict[str, Any]],
    run: SimRun,
    changes: dict[int, list[tuple[float, float, int]]],
    sc: Score,
) -> None:
    out_events: dict[int, list[float]] = {}
    for e in figures:
        if e["kind"] == "level" and e["label"] == "out" and "report" not in e.get("features", {}):
            out_events.setdefault(int(e["slot"]), []).append(float(e["mono_time"]))
    for slot, start in run.initial_units.items():
        n, empty_since = start, (0.0 if start == 0 else None)
        stockouts: list[tuple[float, float]] = []
        for _, t1, u in changes[slot]:
            n += u
            if n == 0 and empty_since is None:
                empty_since = t1
            elif n > 0 and empty_since is not None:
                stockouts.append((empty_since, t1))
                empty_since = None
        if empty_since is not None:
            stockouts.append((empty_since, run.duration_s))
        evs = out_events.get(slot, [])
        sc.stockouts += len(stockouts)
        for t0, t1 in stockouts:
            hit = [t for t in evs if t0 - OUT_MATCH_S <= t <= min(t1, t0 + OUT_MATCH_S)]
            if hit:
                assert sc.delays is not None
                sc.delays.append(max(0.0, hit[0] - t0))
            else:
                sc.missed_out += 1
        for t in evs:
            if not any(t0 - OUT_MATCH_S <= t <= t1 for t0, t1 in stockouts):
                sc.false_out += 1


def before_outs(figures: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``out`` level events the label-driven count would have sent (on its figures)."""
    out: list[dict[str, Any]] = []
    last: dict[int, int] = {}
    for e in figures:
        s = int(e["slot"])
        prev = last.get(s)
        if prev is not None and prev > 0 and e["stock_units"] == 0:
            out.append({**e, "kind": "level", "label": "out", "features": {}})
        last[s] = e["stock_units"]
        out.append(e)
    return out


HEADER = (
    "| scenario | count | slot-minutes | exact | MAE (units) | false out | missed out "
    "| delay to out (s, median) |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


DECISIONS_HEADER = (
    "| scenario | decider | stock events | decided by the model | handed to the rules "
    "| relabelled by the book |\n| --- | --- | ---: | ---: | ---: | ---: |"
)


def _model(args: argparse.Namespace, work: Path) -> Bundle | None:
    if args.bundle is not None:
        if args.key is None:
            raise SystemExit("bench_stock: --bundle needs --key (the bundle's trusted public key)")
        return Bundle(args.bundle, args.key, f"given: {args.bundle}")
    if not args.model:
        return None
    print(f"== training a student ({args.train_scenario}, seed {args.seed})", flush=True)
    b = bundle_for_bench(work, args.train_scenario, args.seed)
    if b.path is None:
        print(f"NO MODEL: {b.recipe}; only the rules rows follow", flush=True)
    else:
        print(f"model bundle: {b.path} ({b.recipe})", flush=True)
    return b


def main(argv: list[str] | None = None) -> dict[str, dict[str, Score]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--quick", action="store_true", help="six minutes of busy only")
    ap.add_argument("--model", action="store_true", help="also run with a student trained here")
    ap.add_argument("--train-scenario", default="busy", help="scenario the student trains on")
    ap.add_argument("--bundle", type=Path, help="also run with this bundle dir (needs --key)")
    ap.add_argument("--key", type=Path, help="public key file the bundle is signed for")
    args = ap.parse_args(argv)
    names = ["busy"] if args.quick else args.scenarios.split(",")
    hours = 0.1 if args.quick else args.hours
    with tempfile.TemporaryDirectory(prefix="bench-stock-model-") as work:
        return _run(args, names, hours, _model(args, Path(work)))


def _run(
    args: argparse.Namespace, names: list[str], hours: float, bundle: Bundle | None
) -> dict[str, dict[str, Score]]:
    deciders = ["rules"] + (["model"] if bundle is not None and bundle.path is not None else [])
    print(
        f"{' and '.join(deciders)} deciding, seed {args.seed}, {hours:g} h per scenario, sync off"
    )
    print(HEADER)
    result: dict[str, dict[str, Score]] = {}
    diagnosis: list[str] = []
    decided: list[str] = []
    for name in names:
        units = {s.slot: s.unit_grams for s in load_scenario(name).slots}
        result[name] = {}
        for who in deciders:
            with tempfile.TemporaryDirectory(prefix="bench-stock-") as tmp:
                events, run = play(
                    name, args.seed, hours, Path(tmp), bundle if who == "model" else None
                )
            if who == "rules":
                old = before_outs(before_figures(events, run))
                result[name]["before"] = score(old, run)
                print(result[name]["before"].row(name, "before: label sums"), flush=True)
            key = "after" if who == "rules" else "model"
            how = "after: from the scale" if who == "rules" else "model: from the scale"
            result[name][key] = score(events, run)
            print(result[name][key].row(name, how), flush=True)
            causes = diagnose(events, run, GRACE_S, units)
            diagnosis.append(diagnosis_row(name, f"from the scale ({who})", causes))
            decided.append(f"| {name} | {who} | {decisions(events).cells()} |")
    print("\nwrong slot-minutes by cause (tests/bench/stock_diagnosis.py)")
    print(DIAGNOSIS_HEADER)
    print("\n".join(diagnosis), flush=True)
    print("\nstock events: who decided them, and how many the stock book relabelled")
    print(DECISIONS_HEADER)
    print("\n".join(decided), flush=True)
    if bundle is not None and bundle.path is None:
        print(f"\nNO MODEL ROWS: {bundle.recipe}")
    return result


if __name__ == "__main__":
    main()
