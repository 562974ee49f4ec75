"""Stock on the unit: units per slot, kept from decided weight changes, and their levels.

Workflow: :class:`StockBook` starts from saved levels (or the slots' capacity, or what
the simulator says the bay holds), takes each decided stock change through
:meth:`StockBook.apply` (``removal`` takes units away, ``return`` and ``restock`` add
them, ``misplaced``/``none``/``sensor_fault`` leave the slot's own stock alone) and
answers with the new count and, when the slot crosses a threshold of its config
(``low_units``; zero is out), a :class:`LevelChange`. Pure: values in, values out; the
decision worker persists :meth:`StockBook.to_dict` with an atomic write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Level = Literal["ok", "low", "out"]

ADDS: frozenset[str] = frozenset({"return", "restock"})
TAKES: frozenset[str] = frozenset({"removal"})


class SlotLike(Protocol):
    """What the book needs of a slot's config (``edge.config.SlotConfig`` fits)."""

    @property
    def slot(self) -> int: ...

    @property
    def sku(self) -> str: ...

    @property
    def capacity(self) -> int: ...

    @property
    def low_units(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A slot's level moved between ``ok``, ``low`` and ``out``."""

    slot: int
    sku: str
    level: Level
    previous: Level
    units: int


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """The outcome of one change: units moved on the slot, units after, level change."""

    slot: int
    moved: int
    units: int
    level: LevelChange | None


class StockBook:
    """Units per slot and their levels; ``low`` at or below ``low_units``, ``out`` at zero."""

    def __init__(self, slots: Iterable[SlotLike], initial: Mapping[int, int] | None = None) -> None:
        self.slots = {s.slot: s for s in slots}
        start = dict(initial or {})
        self.units: dict[int, int] = {
            n: max(0, int(start.get(n, s.capacity))) for n, s in self.slots.items()
        }
        self.clamped = 0  # removals the count could not cover (it never goes below zero)

    def level(self, slot: int) -> Level:
        """``ok``, ``low`` or ``out`` for the slot's current count."""
        n = self.units[slot]
        if n <= 0:
            return "out"
        return "low" if n <= self.slots[slot].low_units else "ok"

    def levels(self) -> dict[int, Level]:
        """The level of every slot."""
        return {s: self.level(s) for s in self.units}

    def effect(self, label: str, units: int) -> int:
        """Signed units a decided change of ``label`` moves on its slot's own stock."""
        if label in TAKES:
            return -abs(units)
        if label in ADDS:
            return abs(units)
        return 0

    def apply(self, slot: int, label: str, units: int) -> StockUpdate:
        """Book one decided change; unknown slots are left alone (moved 0)."""
        if slot not in self.units:
            return StockUpdate(slot, 0, 0, None)
        delta = self.effect(label, units)
        return self._move(slot, delta)

    def set(self, slot: int, units: int) -> StockUpdate:
        """Set a slot's count outright (a staff recount)."""
        if slot not in self.units:
            raise KeyError(slot)
        return self._move(slot, max(0, int(units)) - self.units[slot])

    def _move(self, slot: int, delta: int) -> StockUpdate:
        before_level = self.level(slot)
        before = self.units[slot]
        after = before + delta
        if after < 0:
            self.clamped += -after
            after = 0
        self.units[slot] = after
        now = self.level(slot)
        change = None
        if now != before_level:
            change = LevelChange(slot, self.slots[slot].sku, now, before_level, after)
        return StockUpdate(slot, after - before, after, change)

    def to_dict(self) -> dict[str, Any]:
        """Plain data to persist (``from_dict`` reads it back)."""
        return {"units": {str(k): v for k, v in sorted(self.units.items())}}

    @classmethod
    def from_dict(cls, slots: Iterable[SlotLike], data: Mapping[str, Any]) -> StockBook:
        """A book from saved data; slots not saved start at capacity, unknown ones are dropped."""
        raw = data.get("units", {})
        if not isinstance(raw, Mapping):
            raise ValueError("stock data: 'units' must be a mapping")
        return cls(slots, {int(k): int(v) for k, v in raw.items()})
