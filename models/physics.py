"""Which stock labels a measured weight change allows: the physics table.

The scale says how many units moved; the label says why. A label that the measured
change makes impossible is never emitted, whoever decides (model or rules):

============  ==============================  ===========================================
label         allowed when                    why
============  ==============================  ===========================================
none          ``units == 0``                  no whole unit moved
removal       ``units < 0``                   units left the slot
return        ``units > 0``                   units came back
restock       ``units > 0``                   units came in
misplaced     ``grams > 0``                   an item that is not the slot's SKU was put
                                              on it: weight came, whatever it comes to in
                                              the slot's unit weight (0, 1 or more units)
sensor_fault  always                          a failing cell can read anything
============  ==============================  ===========================================

Taking a foreign item back off a slot is weight leaving (``removal`` when it comes to
whole units, ``none`` when it does not); ``misplaced`` only ever names the arrival.
``grams`` that is not a finite number allows ``sensor_fault`` alone. Whether added
weight is stock at all (whole own units, not an item just moved from another slot)
is :mod:`models.foreign`'s judgement, which the rules and the unit's stock book share;
the labels it leads to (``misplaced`` for an addition, ``return``/``restock`` for
whole own units) stay inside this table.

The table is physics, not a property of a model: the runtime decodes every bundle
through it (:data:`DECODING` in the manifest names it; a bundle without the key is
decoded the same way), training computes the stock loss over the same mask and the
rule baseline obeys it, so every contender is judged under the same constraint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from models.labels import STOCK_LABELS
from models.types import WeightChange

DECODING: Final[str] = "physics-mask-v1"
"""Name of the decoding the runtime applies to the stock head (recorded in bundles)."""

BoolArray = npt.NDArray[np.bool_]


def allows(label: str, units: int, grams: float) -> bool:
    """True when a change of ``units`` whole units and ``grams`` grams may be called ``label``."""
    if label == "sensor_fault":
        return True
    if not math.isfinite(grams):
        return False
    if label == "none":
        return units == 0
    if label == "removal":
        return units < 0
    if label in ("return", "restock"):
        return units > 0
    if label == "misplaced":
        return grams > 0
    raise ValueError(f"unknown stock label {label!r}; known: {', '.join(STOCK_LABELS)}")


def allowed_labels(units: int, grams: float) -> tuple[str, ...]:
    """The stock labels a change allows, in logit order (never empty: ``sensor_fault``)."""
    return tuple(lab for lab in STOCK_LABELS if allows(lab, units, grams))


def allowed_row(units: int, grams: float) -> tuple[bool, ...]:
    """One change's mask over the stock logits: True where the label is allowed."""
    return tuple(allows(lab, units, grams) for lab in STOCK_LABELS)


def allowed_mask(changes: Sequence[WeightChange]) -> BoolArray:
    """The mask of several changes, shape ``(len(changes), len(STOCK_LABELS))``."""
    rows = [allowed_row(c.units, c.grams) for c in changes]
    return np.asarray(rows, np.bool_).reshape(len(rows), len(STOCK_LABELS))
