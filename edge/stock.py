"""Stock on the unit: units per slot from the scale, the labels saying what happened.

Workflow: the signal path measures each slot's absolute load (grams above the
empty-slot tare of its calibration) and hands it on with every settled change
(``WeightChange.level_g``). :class:`StockBook` turns that load into units of the
slot's own SKU: ``round((level_g - foreign - offset) / unit_grams)``, where
``foreign`` is the weight of items known to be foreign (``misplaced`` decisions,
gone again when a change takes away their weight) and ``offset`` the weight the
scale moved without stock (``sensor_fault`` decisions, the residue of a staff
recount). The label never moves the count: a ``+6`` change booked as ``removal``
still leaves six more units on the slot. Without a load yet (a unit just started)
the scale's signed units of the change move a known count, never the label's.

Whether added weight is stock at all the book judges itself, whoever decided the
label (:func:`models.foreign.judge_addition`, the same judgement the rules make): an
addition labelled ``return``, ``restock`` or ``none`` that is off whole units of the
slot, or that matches an item taken from another slot of the bay within
``stock.moved_window_s`` (removals of earlier windows included), is booked as a
foreign item and its label becomes ``misplaced`` (:attr:`StockUpdate.label`, with
:attr:`StockUpdate.relabelled` naming the decided label and :attr:`StockUpdate.reason`
why: ``fit`` or ``moved``). The other way round, a ``misplaced`` addition of whole own
units is stock (``return``, or ``restock`` from ``stock.restock_units`` up; reason
``whole``) when it matches a removal from the same slot, or matches none from another
slot and is not one unit of another SKU of the bay: a restock the decider mistook
for a foreign item does not leave the slot short until a recount. A removal whose
weight fits a foreign item on the slot (within the tolerance) at least as well as
whole own units takes that item away, not stock. Recent removals are kept in memory
only: a restarted unit judges its first additions on fit alone.

Where no whole unit of the slot's own SKU moved (a report, a 0-unit change, a foreign
item or a fault), the count moves only when the load is more than half a unit plus
``count_band`` away from it; a change of whole units always moves it to the load's
nearest count. ``low``/``out`` follow the count with hysteresis (``out`` at zero,
``low`` at or below ``low_units``, ``ok`` again above ``low_units +
low_hysteresis_units``), answered as a :class:`LevelChange`. What cannot be true is
flagged on the slot (:data:`FLAGS`) rather than hidden: a load well below the tare,
a count far above capacity, a foreign item never taken away. :meth:`StockBook.recount`
(staff counted the slot) resets it. Pure: values in, values out; the decision worker
persists :meth:`StockBook.to_dict` with an atomic write.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from edge.stock_config import StockConfig
from edge.stock_types import FLAGS, Level, LevelChange, SlotLike, SlotState, StockUpdate
from models.foreign import Removal, Tolerance, Verdict, judge_addition

__all__ = [
    "FLAGS",
    "FORMAT_VERSION",
    "Level",
    "LevelChange",
    "SlotLike",
    "SlotState",
    "StockBook",
    "StockUpdate",
]

FORMAT_VERSION = 2


class StockBook:
    """Units per slot from absolute loads, levels with hysteresis, implausible states flagged.

    ``initial`` gives counts to start from before the scale has said anything (a saved
    book, a known fill); slots without one are unknown (``None``) until then.
    ``tolerance`` is how far a weight may sit from whole units (its ``noise_g`` should
    be the signal path's settle band).
    """

    def __init__(
        self,
        slots: Iterable[SlotLike],
        initial: Mapping[int, int] | None = None,
        *,
        config: StockConfig | None = None,
        tolerance: Tolerance | None = None,
    ) -> None:
        self.slots = {s.slot: s for s in slots}
        self.config = config or StockConfig()
        self.tolerance = tolerance or Tolerance()
        self.removals: list[Removal] = []  # recent weight losses, for moved items
        start = dict(initial or {})
        self.state: dict[int, SlotState] = {n: SlotState() for n in self.slots}
        for n, st in self.state.items():
            if n in start:
                st.units = max(0, int(start[n]))
                st.level = self._level(n, st.units, None)

    # -- reading --------------------------------------------------------------

    @property
    def units(self) -> dict[int, int | None]:
        """Units on every slot (``None``: the scale has not said yet)."""
        return {n: st.units for n, st in self.state.items()}

    def known(self) -> dict[int, int]:
        """Units on the slots whose count is known."""
        return {n: st.units for n, st in self.state.items() if st.units is not None}

    def level(self, slot: int) -> Level | None:
        """``ok``, ``low`` or ``out`` for the slot (``None`` while its count is unknown)."""
        return self.state[slot].level

    def levels(self) -> dict[int, Level | None]:
        """The level of every slot."""
        return {s: st.level for s, st in self.state.items()}

    def flags(self) -> dict[int, tuple[str, ...]]:
        """The implausible states of every slot that has any."""
        return {n: tuple(sorted(st.flags)) for n, st in self.state.items() if st.flags}

    def features(self, slot: int) -> dict[str, float | str]:
        """What an event about the slot says of its load: grams, foreign grams, flags."""
        st = self.state[slot]
        out: dict[str, float | str] = {}
        if st.level_g is not None:
            out["level_g"] = round(st.level_g, 1)
        if st.foreign:
            out["foreign_g"] = round(st.foreign_g, 1)
        if st.flags:
            out["flags"] = ",".join(sorted(st.flags))
        return out

    # -- writing --------------------------------------------------------------

    def apply(
        self,
        slot: int,
        label: str,
        units: int,
        *,
        grams: float = 0.0,
        level_g: float | None = None,
        t: float = 0.0,
    ) -> StockUpdate:
        """Book one decided change; unknown slots are left alone (moved 0).

        ``units`` and ``grams`` are the change as weighed (signed), ``level_g`` the
        slot's absolute load after it (``None``: not known), ``t`` its sensor time.
        """
        if slot not in self.state:
            return StockUpdate(slot, 0, None, None)
        decided = label
        label, reason = self._relabel(slot, label, units, grams, t)
        upd = self._book(slot, label, units, grams, level_g, t)
        if label == decided:
            return replace(upd, label=label)
        return replace(upd, label=label, relabelled=decided, reason=reason)

    def _judge(self, slot: int, grams: float, t: float) -> Verdict | None:
        """Whether an addition is stock; the removal that explains it is used up."""
        keep = self.config.moved_window_s
        self.removals = [r for r in self.removals if r.t >= t - keep]
        units = {n: float(s.unit_grams) for n, s in self.slots.items()}
        v = judge_addition(slot, grams, t, units, self.removals, tol=self.tolerance, window_s=keep)
        if v is not None and v.matched is not None:
            self.removals.remove(v.matched)
        return v

    def _relabel(
        self, slot: int, label: str, units: int, grams: float, t: float
    ) -> tuple[str, str | None]:
        """The label an addition is booked under, and why it is not the decided one."""
        if grams <= 0 or label == "sensor_fault":
            return label, None
        v = self._judge(slot, grams, t)
        if v is None:
            return label, None
        if v.foreign and label in ("return", "restock", "none"):
            return "misplaced", v.reason
        if v.foreign or label != "misplaced" or units <= 0:
            return label, None
        if v.matched is None and self._one_unit_elsewhere(slot, grams):
            return label, None  # as likely an item of that SKU: the decision stands
        restock = units >= self.config.restock_units and v.matched is None
        return ("restock" if restock else "return"), "whole"

    def _one_unit_elsewhere(self, slot: int, grams: float) -> bool:
        """``grams`` is one unit of another slot's SKU of the bay, within the tolerance."""
        units = (float(spec.unit_grams) for n, spec in self.slots.items() if n != slot)
        return any(
            math.isfinite(u) and u > 0 and abs(grams - u) <= self.tolerance.grams(grams, u)
            for u in units
        )

    def _book(
        self, slot: int, label: str, units: int, grams: float, level_g: float | None, t: float
    ) -> StockUpdate:
        st = self.state[slot]
        unit = float(self.slots[slot].unit_grams)
        own_moved = units
        if label == "sensor_fault":
            st.offset_g += grams
            own_moved = 0
        elif label == "misplaced" and grams > 0:
            st.foreign.append((grams, t))
            own_moved = 0
        elif grams < 0 and st.foreign and self._takes_foreign(st, label, grams, units, unit):
            self.removals.append(Removal(slot, grams, t, foreign=True))
            own_moved = 0
        elif grams < 0 and math.isfinite(grams):
            self.removals.append(Removal(slot, grams, t))
        if level_g is not None:
            return self._settle(slot, level_g, t, steady=own_moved == 0)
        before = st.units
        if before is None:
            return StockUpdate(slot, 0, None, None, tuple(sorted(st.flags)))
        return self._set(slot, max(0, before + own_moved), t)

    def observe(self, slot: int, level_g: float, t: float = 0.0) -> StockUpdate:
        """The scale's absolute load of a slot with nothing decided (start, reports).

        It counts a slot not counted from a load yet in this run (unknown, or a count
        read back from disk: things may have moved while the unit was off); a slot
        already counted keeps its count (only decided changes and recounts move it, so
        slow drift never does) and gets its flags refreshed. A load older than the one
        last counted changes nothing.
        """
        if slot not in self.state:
            return StockUpdate(slot, 0, None, None)
        st = self.state[slot]
        if t < st.at:
            return StockUpdate(slot, 0, st.units, None, tuple(sorted(st.flags)))
        return self._settle(slot, level_g, t, keep=st.counted)

    def recount(self, slot: int, units: int, *, level_g: float | None = None) -> StockUpdate:
        """Staff counted ``units`` of the slot's own SKU on it: foreign items and flags go.

        With the load known, what the load holds beyond those units becomes the slot's
        offset, so the next change counts from the staff's figure.
        """
        if slot not in self.state:
            raise KeyError(slot)
        if units < 0:
            raise ValueError(f"slot {slot}: a recount cannot be negative ({units})")
        st = self.state[slot]
        st.foreign.clear()
        st.flags.clear()
        load = level_g if level_g is not None else st.level_g
        if load is not None:
            st.level_g = load
            st.offset_g = load - units * float(self.slots[slot].unit_grams)
        return self._set(slot, int(units), None)

    # -- inside ---------------------------------------------------------------

    def _takes_foreign(
        self, st: SlotState, label: str, grams: float, units: int, unit: float
    ) -> bool:
        """Remove the foreign item this weight loss matches, when it matches one.

        A negative ``misplaced`` change takes the closest foreign item; any other
        takes one when the loss fits it within the tolerance and at least as well as
        whole own units (a tie goes to the foreign item: it is the one that stands out).
        """
        i, item = min(enumerate(st.foreign), key=lambda x: abs(grams + x[1][0]))
        err_foreign = abs(grams + item[0])
        err_own = abs(grams - units * unit) if units else math.inf
        fits = err_foreign <= self.tolerance.grams(grams, unit)
        if label != "misplaced" and not (err_foreign <= err_own and fits):
            return False
        del st.foreign[i]
        return True

    def _settle(
        self, slot: int, level_g: float, t: float, *, steady: bool = True, keep: bool = False
    ) -> StockUpdate:
        """The count from an absolute load; ``steady`` (no whole own unit moved): with
        hysteresis against the current count, so noise near x.5 units never flips it."""
        st = self.state[slot]
        spec = self.slots[slot]
        cfg = self.config
        st.level_g = level_g
        st.at = max(st.at, t)
        q = (level_g - st.foreign_g - st.offset_g) / float(spec.unit_grams)
        flags = {f for f in st.flags if f == "foreign_unremoved"}
        if q < -cfg.below_tare_units:
            flags.add("below_tare")
        count = max(0, int(math.copysign(math.floor(abs(q) + 0.5), q)))
        if st.units is not None and (
            keep or (steady and abs(q - st.units) <= 0.5 + cfg.count_band)
        ):
            count = st.units
        st.counted = True
        if count > spec.capacity * cfg.capacity_margin:
            flags.add("above_capacity")
        if st.foreign and t - min(s for _, s in st.foreign) > cfg.foreign_max_s:
            flags.add("foreign_unremoved")
        elif not st.foreign:
            flags.discard("foreign_unremoved")
        st.flags = flags
        return self._set(slot, count, t)

    def _level(self, slot: int, units: int, previous: Level | None) -> Level:
        low = self.slots[slot].low_units
        if units <= 0:
            return "out"
        if units <= low:
            return "low"
        if previous in ("low", "out") and units <= low + self.config.low_hysteresis_units:
            return "low"
        return "ok"

    def _set(self, slot: int, units: int, t: float | None) -> StockUpdate:
        st = self.state[slot]
        before, prev = st.units, st.level
        st.units = units
        now = self._level(slot, units, prev)
        st.level = now
        change = None
        if prev is not None and now != prev:
            change = LevelChange(slot, self.slots[slot].sku, now, prev, units)
        moved = 0 if before is None else units - before
        return StockUpdate(slot, moved, units, change, tuple(sorted(st.flags)))

    # -- persistence ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data to persist (``from_dict`` reads it back)."""
        return {
            "version": FORMAT_VERSION,
            "slots": {
                str(n): {
                    "units": st.units,
                    "level_g": st.level_g,
                    "foreign": [[g, s] for g, s in st.foreign],
                    "offset_g": st.offset_g,
                    "level": st.level,
                    "flags": sorted(st.flags),
                }
                for n, st in sorted(self.state.items())
            },
        }

    @classmethod
    def from_dict(
        cls,
        slots: Iterable[SlotLike],
        data: Mapping[str, Any],
        *,
        config: StockConfig | None = None,
    ) -> StockBook:
        """A book from saved data (this format or the older ``{"units": {...}}``).

        Slots not saved start unknown, unknown ones are dropped; a malformed entry is
        a ``ValueError`` naming it.
        """
        if "slots" not in data:  # format 1: counts only
            raw = data.get("units", {})
            if not isinstance(raw, Mapping):
                raise ValueError("stock data: 'units' must be a mapping")
            return cls(slots, {int(k): int(v) for k, v in raw.items()}, config=config)
        book = cls(slots, config=config)
        saved = data["slots"]
        if not isinstance(saved, Mapping):
            raise ValueError("stock data: 'slots' must be a mapping")
        for key, item in saved.items():
            n = int(key)
            if n not in book.state:
                continue
            try:
                units = item["units"]
                level = item.get("level")
                st = SlotState(
                    units=None if units is None else max(0, int(units)),
                    level_g=None if item.get("level_g") is None else float(item["level_g"]),
                    foreign=[(float(g), float(s)) for g, s in item.get("foreign", [])],
                    offset_g=float(item.get("offset_g", 0.0)),
                    level=level if level in ("ok", "low", "out") else None,
                    flags={str(f) for f in item.get("flags", []) if f in FLAGS},
                )
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"stock data: slot {key}: {err}") from None
            if st.units is not None and st.level is None:
                st.level = book._level(n, st.units, None)
            book.state[n] = st
        return book
