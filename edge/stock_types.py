"""The values of the stock book (:mod:`edge.stock`): levels, updates, a slot's state, flags."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

Level = Literal["ok", "low", "out"]

FLAGS: dict[str, str] = {
    "below_tare": "the load is well below the empty-slot tare (tare taken with items on, drift)",
    "above_capacity": "the count is far above the slot's capacity (calibration off?)",
    "foreign_unremoved": "a foreign item has stayed on the slot longer than stock.foreign_max_s",
}
"""Implausible states of a slot, and what each means."""


class SlotLike(Protocol):
    """What the book needs of a slot's config (``edge.config.SlotConfig`` fits)."""

    @property
    def slot(self) -> int: ...

    @property
    def sku(self) -> str: ...

    @property
    def unit_grams(self) -> float: ...

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
    """The outcome of one change: units moved, units after (None: unknown), level change.

    ``label`` is the label the change was booked under; ``relabelled`` the decided one
    when the book overruled it (``None`` otherwise), ``reason`` why (``fit``,
    ``moved``: not stock; ``whole``: stock).
    """

    slot: int
    moved: int
    units: int | None
    level: LevelChange | None
    flags: tuple[str, ...] = ()
    label: str | None = None
    relabelled: str | None = None
    reason: str | None = None


@dataclass
class SlotState:
    """What the book holds of one slot.

    ``foreign`` are ``(grams, since)`` of foreign items on it; ``offset_g`` weight on
    the scale that is not stock; ``level_g`` the last absolute load it was told.
    """

    units: int | None = None
    level_g: float | None = None
    foreign: list[tuple[float, float]] = field(default_factory=list)
    offset_g: float = 0.0
    level: Level | None = None
    flags: set[str] = field(default_factory=set)
    at: float = -math.inf  # sensor time of the load last counted
    counted: bool = False  # counted from a load in this run (not only read back)

    @property
    def foreign_g(self) -> float:
        """Grams of foreign items on the slot."""
        return sum(g for g, _ in self.foreign)
