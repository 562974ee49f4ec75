"""A simulated run on disk: raw counts beside the ground truth and the scenario used.

``save_run`` writes into one folder:

- ``counts.npz``: ``t`` (seconds), ``counts`` (int32, samples x channels), ``valid``,
  ``sps``, and the cells' true ``counts_per_gram`` / ``offset_counts``;
- ``episodes.jsonl``, ``changes.jsonl``, ``visits.jsonl``, ``handlings.jsonl``,
  ``faults.jsonl``: the truth, one JSON object per line, in time order;
- ``scenario.toml``: the scenario as loaded (re-loadable with ``load_scenario``);
- ``manifest.json``: scenario name, seed, duration, sps, channels, stock, counts.

Every file is written to a temporary name and moved into place, the manifest last.
``load_truth`` reads the truth back into a :class:`SimRun`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import Scenario
from firmware_bridge.sim.truth import Episode, Handling, SensorFault, TruthChange, ZoneVisit
from firmware_bridge.sim.twin import SimRun
from models.atomic import atomic_write, write_text_atomic

TRUTH_FILES = ("episodes", "changes", "visits", "handlings", "faults")


def _jsonl(items: Iterable[object]) -> str:
    return "".join(json.dumps(asdict(x), separators=(",", ":")) + "\n" for x in items)  # type: ignore[call-overload]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def scenario_toml(scenario: Scenario) -> str:
    """The scenario as TOML text that :func:`load_scenario` reads back to an equal scenario."""
    data = scenario.model_dump()
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict | list)]
    for s in data["slots"]:
        lines.append("\n[[slots]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in s.items())
    for section in ("traffic", "staff", "hx711", "faults"):
        lines.append(f"\n[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in data[section].items())
    return "\n".join(lines) + "\n"


def save_run(out: Path | str, run: SimRun, scenario: Scenario) -> Path:
    """Simulate the raw counts of ``run`` and write them with the truth into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim = LoadCellSim(run, scenario, run.seed)
    t, counts, valid = sim.arrays()

    with atomic_write(out / "counts.npz", "wb", perms=0o644) as f:
        np.savez(
            f,
            t=t,
            counts=counts,
            valid=valid,
            sps=np.int32(scenario.sps),
            counts_per_gram=sim.counts_per_gram,
            offset_counts=sim.offset_counts,
        )
    for name in TRUTH_FILES:
        write_text_atomic(out / f"{name}.jsonl", _jsonl(getattr(run, name)), perms=0o644)
    write_text_atomic(out / "scenario.toml", scenario_toml(scenario), perms=0o644)
    manifest = {
        "scenario": scenario.name,
        "seed": run.seed,
        "duration_s": run.duration_s,
        "sps": scenario.sps,
        "channels": scenario.channels,
        "samples": int(t.shape[0]),
        "initial_units": {str(k): v for k, v in run.initial_units.items()},
        "final_units": {str(k): v for k, v in run.final_units.items()},
        "initial_grams": {str(k): v for k, v in run.initial_grams.items()},
        "counts": {name: len(getattr(run, name)) for name in TRUTH_FILES},
    }
    with atomic_write(out / "manifest.json", perms=0o644) as f:
        json.dump(manifest, f, indent=2)
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_truth(folder: Path | str) -> SimRun:
    """The truth of a saved run (without the counts: load ``counts.npz`` with numpy)."""
    folder = Path(folder)
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    run = SimRun(m["scenario"], int(m["seed"]), float(m["duration_s"]))
    run.changes = [TruthChange(**d) for d in _read(folder / "changes.jsonl")]
    run.visits = [ZoneVisit(**d) for d in _read(folder / "visits.jsonl")]
    run.faults = [SensorFault(**d) for d in _read(folder / "faults.jsonl")]
    run.handlings = [
        Handling(**{**d, "steps": tuple(tuple(s) for s in d["steps"])})
        for d in _read(folder / "handlings.jsonl")
    ]
    run.episodes = [
        Episode(**{**d, "changes": tuple(TruthChange(**c) for c in d["changes"])})
        for d in _read(folder / "episodes.jsonl")
    ]
    run.initial_units = {int(k): int(v) for k, v in m["initial_units"].items()}
    run.final_units = {int(k): int(v) for k, v in m["final_units"].items()}
    run.initial_grams = {int(k): float(v) for k, v in m["initial_grams"].items()}
    return run
