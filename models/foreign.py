"""Whether weight added to a slot is the slot's own stock or a foreign item.

The scale weighs; it cannot read a label. An addition is still the slot's own stock
only when two things hold, and :func:`judge_addition` says which one failed:

1. **It fits whole units.** The grams are a whole number (at least one) of the slot's
   unit weight within :class:`Tolerance`: the settle band of the signal path (the
   noise the unit already allows a settled level) plus a small share of the weight
   for calibration gain, never more than a quarter of a unit. A 400 g soup on a
   375 g cereal slot is 25 g off one unit: ``fit``.
2. **It is not an item just moved from another slot.** A removal from another slot
   of the bay in the last ``window_s`` seconds whose weight the addition matches
   within the tolerance, and that is itself whole units of its own slot, means a
   shopper moved that item here: ``moved``, even when the grams also happen to be
   whole units of this slot (a 1,500 g bottle on a 150 g crisps slot is exactly ten
   bags). A matching removal from the *same* slot makes it a ``return``. Where
   several removals match, the latest explains the addition: three 85 g units taken
   from this slot 40 s ago and a 255 g jar taken from another 13 s ago, then 255 g
   left here, is the jar (the shopper who just took it), not the three units brought
   back by someone else; in a crowded bay of near-equal weights the own slot's older
   removal used to win and the jar was counted as stock until the next recount.
   Each removal explains one addition at most.

An addition of whole own units that matches no recent removal stays stock, even when
it equals one unit of another SKU of the bay: staff put ten 150 g bags on a slot far
more often than a shopper leaves a 1,500 g bottle there without the unit having seen
it leave another slot. Additions within the noise (no more than the tolerance) are
not items at all (:data:`ITEM_NOISE` settle bands or less).

The rules (:mod:`models.rules`, removals of the same window) and the unit's stock
book (:mod:`edge.stock`, removals of recent windows too) both decide with this one
function, and both stay inside the physics table: ``misplaced`` is allowed for any
change that added weight (:mod:`models.physics`). Pure: values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Reason = Literal["fit", "moved"]
ITEM_NOISE = 3.0
"""An addition of no more than this many settle bands is noise, not an item."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a settled weight may sit from whole units and still be them.

    ``noise_g`` is the settle band of the signal path (``signals.settle_band_g``),
    ``rel`` the share of the weight allowed for calibration gain, ``max_units`` the
    cap in units of the slot (an error this large is never noise).
    """

    noise_g: float = 6.0
    rel: float = 0.005
    max_units: float = 0.25

    def grams(self, grams: float, unit_grams: float) -> float:
        """The tolerance in grams for a change of ``grams`` on a slot of ``unit_grams``."""
        return min(self.noise_g + self.rel * abs(grams), self.max_units * unit_grams)


@dataclass(frozen=True, slots=True)
class Removal:
    """Weight that left a slot (``grams`` negative) at sensor time ``t``.

    ``foreign``: it was a foreign item on that slot, not the slot's own stock.
    """

    slot: int
    grams: float
    t: float
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an addition is: ``foreign`` (with the ``reason``) or the slot's own stock.

    ``matched`` is the removal it is explained by (a return or a moved item), if any.
    """

    foreign: bool
    reason: Reason | None = None
    matched: Removal | None = None


OWN = Verdict(False)


def whole_units(grams: float, unit_grams: float, tol: Tolerance) -> int | None:
    """The whole units (≥ 1) ``grams`` comes to on a slot of ``unit_grams``; None if it does not."""
    if not (math.isfinite(grams) and math.isfinite(unit_grams)) or unit_grams <= 0:
        return None
    k = round(abs(grams) / unit_grams)
    if k < 1 or abs(abs(grams) - k * unit_grams) > tol.grams(grams, unit_grams):
        return None
    return k


def judge_addition(
    slot: int,
    grams: float,
    t: float,
    unit_grams: Mapping[int, float],
    removals: Sequence[Removal],
    *,
    tol: Tolerance | None = None,
    window_s: float = 60.0,
) -> Verdict | None:
    """Whether ``grams`` added to ``slot`` at ``t`` is stock; ``None``: not an addition.

    ``unit_grams`` gives the unit weight of the bay's slots, ``removals`` the weight
    that left slots before (any order; those after ``t`` or older than ``window_s``
    are ignored).
    """
    tol = tol or Tolerance()
    own = unit_grams.get(slot, 0.0)
    if not math.isfinite(grams) or grams <= 0:
        return None
    if grams <= ITEM_NOISE * tol.noise_g:
        return None  # within the noise: no item at all
    recent = [r for r in removals if t - window_s <= r.t <= t and math.isfinite(r.grams)]
    recent.sort(key=lambda r: (-r.t, r.slot != slot))  # the latest first; a tie: this slot
    for r in recent:
        u = unit_grams.get(r.slot, 0.0)
        if r.foreign:  # a foreign item taken off its slot: home here when whole own units
            if abs(grams + r.grams) <= tol.grams(grams, own) and whole_units(grams, own, tol):
                return Verdict(False, None, r)
            continue
        if not math.isfinite(u) or u <= 0:
            continue
        if abs(grams + r.grams) > tol.grams(grams, u) or whole_units(r.grams, u, tol) is None:
            continue
        if r.slot == slot:
            return Verdict(False, None, r)
        return Verdict(True, "moved", r)
    if whole_units(grams, own, tol) is None:
        return Verdict(True, "fit")
    return OWN
