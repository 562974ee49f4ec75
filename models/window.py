"""The event window: everything the unit saw of one episode at one bay.

The edge groups the pipeline's :class:`~models.types.WeightChange` and
:class:`~models.types.Presence` values of one bay into windows (``edge.windows``);
the tokenizer (``models.tokens``) turns a window into token ids; the model decides
one shelf-interest label per window and one stock label per change. Windows also
travel as JSON (``models.dataset``), so they convert to and from plain dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.types import Presence, WeightChange


@dataclass(frozen=True, slots=True)
class SlotContext:
    """What the unit knows about one slot when a window closes.

    ``unit_grams`` comes from the unit config (the SKU normally stocked there);
    ``recent_changes`` counts settled changes on the slot in the look-back before the
    window, ``since_last_s`` is the time since the last of them (``None``: none seen),
    ``stock_units`` the level the unit believes the slot holds (``None``: unknown).
    """

    slot: int
    unit_grams: float
    recent_changes: int = 0
    since_last_s: float | None = None
    stock_units: int | None = None


@dataclass(frozen=True, slots=True)
class EventWindow:
    """One bay, one episode: the presence (if anyone was there) and the weight changes.

    ``presence`` is the episode in the ``bay`` zone (``None`` when the weight moved
    with nobody in front of the bay); ``reaches`` are the ``slot-<n>`` zone episodes
    inside it; ``changes`` the settled weight changes attributed to it, in time order.
    ``hour`` is the local hour of day (0-23); ``neighbours`` counts the other activity
    at the bay (people arriving, changes with nobody there) from a minute before the
    window's start to its end.
    """

    bay: str
    episode: int
    t_start: float
    t_end: float
    hour: int
    presence: Presence | None
    reaches: tuple[Presence, ...] = ()
    changes: tuple[WeightChange, ...] = ()
    slots: Mapping[int, SlotContext] = field(default_factory=dict)
    neighbours: int = 0

    @property
    def shoppers_seen(self) -> int:
        """Shoppers the camera counted in the episode (0: nobody at the bay).

        Each entry into the bay zone is one (a re-entry after the zone emptied is
        another shopper to the camera); 2 or more means the window may mix people the
        camera cannot tell apart, and its interest label is the window's, not one person's.
        """
        return self.presence.entries if self.presence is not None else 0

    @property
    def crowded(self) -> bool:
        """True when the camera saw two or more shoppers in the window."""
        return self.shoppers_seen >= 2

    def context(self, slot: int) -> SlotContext | None:
        """The slot context of ``slot``, if the window carries one."""
        return self.slots.get(slot)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "bay": self.bay,
            "episode": self.episode,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "hour": self.hour,
            "presence": _presence_dict(self.presence) if self.presence else None,
            "reaches": [_presence_dict(p) for p in self.reaches],
            "changes": [_change_dict(c) for c in self.changes],
            "slots": [_slot_dict(s) for s in self.slots.values()],
            "neighbours": self.neighbours,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EventWindow:
        """Read a dict written by :meth:`to_dict`; raises ``KeyError``/``TypeError``/``ValueError``."""
        presence = d.get("presence")
        slots = [SlotContext(**s) for s in d.get("slots", [])]
        return cls(
            bay=str(d["bay"]),
            episode=int(d["episode"]),
            t_start=float(d["t_start"]),
            t_end=float(d["t_end"]),
            hour=int(d["hour"]),
            presence=Presence(**presence) if presence else None,
            reaches=tuple(Presence(**p) for p in d.get("reaches", [])),
            changes=tuple(WeightChange(**c) for c in d.get("changes", [])),
            slots={s.slot: s for s in slots},
            neighbours=int(d.get("neighbours", 0)),
        )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _presence_dict(p: Presence) -> dict[str, Any]:
    return {
        "zone": p.zone,
        "t_enter": p.t_enter,
        "t_leave": p.t_leave,
        "dwell": p.dwell,
        "peak_motion": p.peak_motion,
        "entries": p.entries,
    }


def _change_dict(c: WeightChange) -> dict[str, Any]:
    return {
        "slot": c.slot,
        "grams": c.grams,
        "units": c.units,
        "t_start": c.t_start,
        "t_settled": c.t_settled,
        "confidence": c.confidence,
    }


def _slot_dict(s: SlotContext) -> dict[str, Any]:
    return {
        "slot": s.slot,
        "unit_grams": s.unit_grams,
        "recent_changes": s.recent_changes,
        "since_last_s": _finite(s.since_last_s),
        "stock_units": s.stock_units,
    }
