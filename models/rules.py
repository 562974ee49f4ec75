"""The rule baseline: what a smart shelf without a model does, with fitted thresholds.

Interest is a decision list over the presence's dwell and peak motion, slot reaches
and the weight changes (units gone for good -> ``take``; weight moved and came back, a
slot handled with no unit moved (a change of 0 units), or a long reach -> ``touch``;
long and busy -> ``browse``; a stop -> ``glance``; else ``pass_by``). Stock is a
decision list per change over signed grams, units, fit to the slot's unit weight,
confidence and whether anyone was there (with nobody seen a change is ``sensor_fault``
unless it is whole units of its slot within the noise: a removal the camera missed),
and whether added weight is the slot's own stock at all
(:func:`models.foreign.judge_addition` over the window's removals: with someone there,
an addition off whole units, or matching an item just taken from another slot of the
window, is ``misplaced``); a label the physics table
(:mod:`models.physics`) forbids for the change falls back to the one its sign says
(``removal``, ``return``/``restock``, ``none``), so the rules obey the same table
as the model's masked decoding. Every threshold is fitted on the training
windows by coordinate search for the best macro-F1 of its head, so the baseline is as
good as thresholds on these features can be, not a strawman.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import numpy as np

from models.dataset import LabeledWindow
from models.foreign import Removal, Tolerance, Verdict, judge_addition, whole_units
from models.labels import INTEREST_LABELS, STOCK_LABELS
from models.metrics import macro_f1
from models.physics import allows
from models.types import WeightChange
from models.window import EventWindow

TIGHT = Tolerance(max_units=0.05)
"""Whole units with nobody seen: within the noise and never more than 5 % of a unit off."""


@dataclass(frozen=True, slots=True)
class InterestRules:
    """Thresholds of the interest decision list."""

    glance_dwell: float = 1.5
    browse_dwell: float = 6.0
    browse_motion: float = 0.3
    touch_reach_dwell: float = 2.0
    touch_motion: float = 0.5
    take_units: int = 1
    touch_handled: bool = True  # a change of 0 units (handled, nothing moved) means touch


@dataclass(frozen=True, slots=True)
class StockRules:
    """Thresholds of the stock decision list."""

    noise_grams: float = 10.0
    misplaced_fit: float = 0.25
    restock_units: int = 3
    fault_confidence: float = 0.3
    blind_whole_units: bool = True  # nobody seen, whole own units within the noise: stock


def _fit_of(w: EventWindow, c: WeightChange) -> float:
    ctx = w.context(c.slot)
    if ctx is None or ctx.unit_grams <= 0 or not math.isfinite(c.grams):
        return 0.0
    r = abs(c.grams) / ctx.unit_grams
    return abs(r - round(r))


def interest_rule(r: InterestRules, w: EventWindow) -> str:
    """Shelf-interest of one window by the decision list."""
    p = w.presence
    dwell = p.dwell if p else 0.0
    motion = p.peak_motion if p else 0.0
    net_units = sum(c.units for c in w.changes)
    if -net_units >= r.take_units:
        return "take"
    moved_back = len(w.changes) >= 2 and net_units == 0
    handled = r.touch_handled and any(c.units == 0 for c in w.changes)
    reach = max((x.dwell for x in w.reaches), default=0.0)
    if moved_back or handled or (reach >= r.touch_reach_dwell and motion >= r.touch_motion):
        return "touch"
    if dwell >= r.browse_dwell and motion >= r.browse_motion:
        return "browse"
    if dwell >= r.glance_dwell:
        return "glance"
    return "pass_by"


def stock_rule(r: StockRules, w: EventWindow, c: WeightChange) -> str:
    """Stock label of one change by the decision list, within the physics table."""
    label = _stock_list(r, w, c)
    if allows(label, c.units, c.grams):
        return label
    if not math.isfinite(c.grams):
        return "sensor_fault"
    if c.units < 0:
        return "removal"
    if c.units > 0:
        return "restock" if c.units >= r.restock_units else "return"
    return "none"


def window_verdicts(w: EventWindow) -> dict[int, Verdict]:
    """Per change of ``w`` that added weight (by index): own stock or foreign, and why.

    Changes are judged in time order against the window's earlier removals; a removal
    that explains one addition (a return, a moved item) explains no other.
    """
    units = {s: ctx.unit_grams for s, ctx in w.slots.items()}
    removals: list[Removal] = []
    out: dict[int, Verdict] = {}
    for i, c in sorted(enumerate(w.changes), key=lambda x: x[1].t_settled):
        if c.grams < 0:
            removals.append(Removal(c.slot, c.grams, c.t_settled))
            continue
        v = judge_addition(c.slot, c.grams, c.t_settled, units, removals, window_s=math.inf)
        if v is not None:
            out[i] = v
            if v.matched is not None:
                removals.remove(v.matched)
    return out


def _verdict(w: EventWindow, c: WeightChange) -> Verdict | None:
    if c in w.changes:
        return window_verdicts(w).get(w.changes.index(c))
    units = {s: ctx.unit_grams for s, ctx in w.slots.items()}
    removals = [Removal(x.slot, x.grams, x.t_settled) for x in w.changes if x.grams < 0]
    return judge_addition(c.slot, c.grams, c.t_settled, units, removals, window_s=math.inf)


def _whole_within_noise(w: EventWindow, c: WeightChange) -> bool:
    """The change is whole units of its slot within the noise (a removal the camera missed)."""
    ctx = w.context(c.slot)
    return (
        ctx is not None and c.units != 0 and whole_units(c.grams, ctx.unit_grams, TIGHT) is not None
    )


def _stock_list(r: StockRules, w: EventWindow, c: WeightChange) -> str:
    if abs(c.grams) < r.noise_grams:
        return "none"
    if w.presence is not None and c.grams > 0:
        v = _verdict(w, c)
        if v is not None and v.foreign:
            return "misplaced"
    if w.presence is None and not (r.blind_whole_units and _whole_within_noise(w, c)):
        return "sensor_fault"  # weight beyond the noise moved with nobody there
    if c.units == 0 and _fit_of(w, c) < r.misplaced_fit:
        return "none"
    if w.presence is not None and c.confidence < r.fault_confidence:
        return "sensor_fault"
    if c.grams > 0 and _fit_of(w, c) >= r.misplaced_fit:
        return "misplaced"
    if c.grams < 0:
        return "removal"
    if c.units >= r.restock_units:
        return "restock"
    return "return"


@dataclass(frozen=True, slots=True)
class RuleBaseline:
    """Both decision lists with their thresholds."""

    interest: InterestRules = InterestRules()
    stock: StockRules = StockRules()

    def predict(self, w: EventWindow) -> tuple[str, list[str]]:
        """``(interest label, stock label per change)`` of one window."""
        return interest_rule(self.interest, w), [stock_rule(self.stock, w, c) for c in w.changes]

    def to_dict(self) -> dict[str, Any]:
        """Thresholds as plain data (for reports and the bundle's guard)."""
        return {"interest": asdict(self.interest), "stock": asdict(self.stock)}

    @classmethod
    def from_dict(cls, d: Any) -> RuleBaseline:
        """Thresholds written by :meth:`to_dict`; raises ``ValueError`` naming the key at fault."""
        if not isinstance(d, dict):
            raise ValueError("rule thresholds: not an object")
        parts: list[Any] = []
        for name, kind in (("interest", InterestRules), ("stock", StockRules)):
            got = d.get(name, {})
            if not isinstance(got, dict):
                raise ValueError(f"rule thresholds.{name}: not an object")
            base = kind()
            vals: dict[str, Any] = {}
            for k, v in got.items():
                if not hasattr(base, k):
                    raise ValueError(f"rule thresholds.{name}.{k}: unknown threshold")
                want = type(getattr(base, k))
                ok = (
                    isinstance(v, want)
                    if want is bool
                    else (
                        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    )
                )
                if ok and want is int:
                    ok = float(v).is_integer() and abs(v) <= 1_000_000
                if not ok:
                    raise ValueError(f"rule thresholds.{name}.{k}: {v!r} is not a {want.__name__}")
                vals[k] = want(v)
            parts.append(replace(base, **vals))
        return cls(parts[0], parts[1])

    @classmethod
    def fit(cls, records: Sequence[LabeledWindow], rounds: int = 3) -> RuleBaseline:
        """Thresholds that maximise each head's macro-F1 on ``records``, by coordinate search."""
        irec = [r for r in records if r.interest is not None]
        y_i = [INTEREST_LABELS.index(r.interest) for r in irec if r.interest]
        srec = [
            (r.window, c, s)
            for r in records
            for c, s in zip(r.window.changes, r.stock_labels, strict=True)
            if s is not None
        ]
        y_s = [STOCK_LABELS.index(s) for _, _, s in srec]

        def score_i(p: InterestRules) -> float:
            pred = [INTEREST_LABELS.index(interest_rule(p, r.window)) for r in irec]
            return macro_f1(y_i, pred, len(INTEREST_LABELS))

        def score_s(p: StockRules) -> float:
            pred = [STOCK_LABELS.index(stock_rule(p, w, c)) for w, c, _ in srec]
            return macro_f1(y_s, pred, len(STOCK_LABELS))

        dwells = [r.window.presence.dwell for r in irec if r.window.presence]
        motions = [r.window.presence.peak_motion for r in irec if r.window.presence]
        reaches = [x.dwell for r in irec for x in r.window.reaches]
        grams = [abs(c.grams) for _, c, _ in srec]
        fits = [_fit_of(w, c) for w, c, _ in srec]
        confs = [c.confidence for _, c, _ in srec]
        i_grid: dict[str, list[Any]] = {
            "glance_dwell": _grid(dwells),
            "browse_dwell": _grid(dwells),
            "browse_motion": _grid(motions),
            "touch_reach_dwell": _grid(reaches),
            "touch_motion": _grid(motions),
            "take_units": [1, 2],
            "touch_handled": [True, False],
        }
        s_grid: dict[str, list[Any]] = {
            "noise_grams": _grid(grams, lo=0.0, hi=0.5),
            "misplaced_fit": _grid(fits),
            "restock_units": [2, 3, 4, 5, 6, 8],
            "fault_confidence": _grid(confs, lo=0.0, hi=0.5),
            "blind_whole_units": [True, False],
        }
        best_i = _search(InterestRules(), i_grid, score_i, rounds) if irec else InterestRules()
        best_s = _search(StockRules(), s_grid, score_s, rounds) if srec else StockRules()
        return cls(best_i, best_s)


P = TypeVar("P", InterestRules, StockRules)


def _grid(values: Sequence[float], lo: float = 0.0, hi: float = 1.0, n: int = 24) -> list[float]:
    if not values:
        return [0.0]
    qs = np.quantile(np.asarray(values, np.float64), np.linspace(lo, hi, n))
    return sorted({round(float(q), 4) for q in qs})


def _search(start: P, grid: dict[str, list[Any]], score: Callable[[P], float], rounds: int) -> P:
    best, best_score = start, score(start)
    for _ in range(rounds):
        improved = False
        for name, values in grid.items():
            for v in values:
                cand = replace(best, **{name: v})
                s = score(cand)
                if s > best_score:
                    best, best_score, improved = cand, s, True
        if not improved:
            break
    return best
