"""Which SKUs a shopper's episode concerns, so the cloud can count interest per SKU.

An interest decision is about one presence episode at a bay. It is attributed to
every slot the shopper *handled* (a settled weight change on it during the episode,
a 0-unit one included: picked up and put back) and to every slot the shopper
*reached* (a ``slot-<n>`` camera zone episode) without a change; an episode with
neither (a glance, a pass-by) is attributed to the *bay*. :func:`concerns` decides
that from the window alone; :mod:`edge.events` writes one interest event per
concern, with the slot (the cloud fills its SKU from the registration) and
``features.attribution``. Pure: values in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal

from models.window import EventWindow

Attribution = Literal["handled", "reach", "bay"]
ATTRIBUTIONS: Final[tuple[Attribution, ...]] = ("handled", "reach", "bay")
SLOT_ZONE = re.compile(r"slot-([0-9]{1,2})")
MAX_SLOT = 63  # as ``models.wire`` bounds a slot


@dataclass(frozen=True, slots=True)
class Concern:
    """One thing an episode's interest is attributed to: a slot (or the bay) and how."""

    slot: int | None
    attribution: Attribution
    reach_dwell: float = 0.0
    """Seconds the shopper's hand spent in the slot's camera zone (0: not seen there)."""


def zone_slot(zone: str) -> int | None:
    """The slot a camera zone named ``slot-<n>`` looks at (``None`` for any other zone)."""
    m = SLOT_ZONE.fullmatch(zone)
    if m is None:
        return None
    n = int(m.group(1))
    return n if n <= MAX_SLOT else None


def concerns(w: EventWindow, known_slots: Collection[int] = ()) -> list[Concern]:
    """What the episode of ``w`` concerns, in slot order; the bay alone when no slot.

    ``known_slots`` are the unit's configured slots: a camera zone naming another
    slot (a zone drawn over an empty shelf part) is not attributed to it. Empty:
    every zone slot is taken.
    """
    handled = {c.slot for c in w.changes}
    reached: dict[int, float] = {}
    for r in w.reaches:
        s = zone_slot(r.zone)
        if s is None or (known_slots and s not in known_slots):
            continue
        reached[s] = reached.get(s, 0.0) + max(0.0, r.dwell)
    slots = sorted(handled | reached.keys())
    if not slots:
        return [Concern(None, "bay")]
    return [
        Concern(s, "handled" if s in handled else "reach", round(reached.get(s, 0.0), 2))
        for s in slots
    ]
