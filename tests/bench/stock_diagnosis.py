"""Where the stock bench's wrong slot-minutes come from, by cause.

Each scored slot-minute whose figure is not the truth is put in the first cause that
explains it, in this order:

- *misplaced-as-stock*: the slot carries foreign items by then (the twin's
  ``misplaced`` changes) and the figure is above the truth by no more than the units
  their weight could make on this slot: weight of another SKU counted as stock;
- *unsettled*: a change of the slot ended less than ``UNSETTLED_S`` before the minute
  (its window may not have closed yet): the figure was going to follow;
- *calibration/drift*: the slot's cell had a fault (offset jump, stuck, disconnect)
  by then: the scale itself was off;
- *no figure*: the unit never said anything about the slot up to then;
- *other*: none of the above (a label, a merge of two changes, a count rounding).

The twin's truth is only read here, to explain errors; the unit never sees it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from firmware_bridge.sim.twin import SimRun

CAUSES = ("misplaced-as-stock", "unsettled", "calibration/drift", "no figure", "other")
UNSETTLED_S = 60.0
OWN = frozenset({"removal", "return", "restock"})


def diagnose(
    figures: Sequence[dict[str, Any]],
    run: SimRun,
    grace_s: float,
    unit_grams: Mapping[int, float] | None = None,
) -> Counter[str]:
    """Wrong slot-minutes of ``figures`` (in seq order) by cause (keys of :data:`CAUSES`).

    ``unit_grams`` per slot (the scenario's); where missing, it is read off the run's
    own-stock changes, and failing that any count above the truth on a slot holding
    foreign items counts as theirs.
    """
    per_slot: dict[int, list[tuple[float, int]]] = {}
    for e in figures:
        if e.get("slot") is not None and e.get("stock_units") is not None:
            per_slot.setdefault(int(e["slot"]), []).append(
                (float(e["mono_time"]), int(e["stock_units"]))
            )
    changes = sorted(run.changes, key=lambda c: c.t_end)
    unit = {s: 0.0 for s in run.initial_units}
    for c in changes:
        if c.kind in OWN and c.units:
            unit[c.slot] = abs(c.grams / c.units)
    unit.update(unit_grams or {})
    out: Counter[str] = Counter()
    for slot, start in run.initial_units.items():
        mine = [c for c in changes if c.slot == slot]
        figs = per_slot.get(slot, [])
        faults = [f.t_start for f in run.faults if f.slot == slot]
        for m in range(1, int(run.duration_s // 60) + 1):
            t = m * 60.0
            if any(c.t_start <= t <= c.t_end + grace_s for c in mine if c.kind in OWN):
                continue  # not scored (as in the bench)
            truth = start + sum(c.units for c in mine if c.kind in OWN and c.t_end <= t)
            got = [u for tf, u in figs if tf <= t]
            if got and got[-1] == truth:
                continue
            foreign_g = sum(c.grams for c in mine if c.kind == "misplaced" and c.t_end <= t)
            off = (got[-1] - truth) if got else None
            u = unit.get(slot, 0.0)
            most = math.ceil(foreign_g / u) if u > 0 else math.inf  # units it could add
            if off is not None and foreign_g > 0 and 1 <= off <= most:
                out["misplaced-as-stock"] += 1
            elif any(t - UNSETTLED_S < c.t_end <= t for c in mine):
                out["unsettled"] += 1
            elif any(f <= t for f in faults):
                out["calibration/drift"] += 1
            elif not got:
                out["no figure"] += 1
            else:
                out["other"] += 1
    return out


def diagnosis_row(name: str, how: str, causes: Counter[str]) -> str:
    """One markdown row: the scenario's wrong slot-minutes by cause."""
    cells = " | ".join(str(causes.get(c, 0)) for c in CAUSES)
    return f"| {name} | {how} | {sum(causes.values())} | {cells} |"


DIAGNOSIS_HEADER = (
    "| scenario | count | wrong slot-minutes | " + " | ".join(CAUSES) + " |\n"
    "| --- | --- | ---: | " + " | ".join("---:" for _ in CAUSES) + " |"
)
