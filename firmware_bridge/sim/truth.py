"""Ground truth the simulator knows exactly and the pipeline has to find."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ZoneVisit:
    """A shopper standing in one camera zone, as the twin planned it.

    ``motion`` in [0, 1] is how much the shopper moves while there (reaching,
    handling products); ``intent`` is the shelf-interest label of the episode.
    """

    shopper: int
    zone: str
    t_enter: float
    t_leave: float
    motion: float
    intent: str


@dataclass(frozen=True, slots=True)
class TruthChange:
    """A change of stock on one slot, as the twin made it happen.

    ``grams`` and ``units`` are signed (negative: left the shelf); ``kind`` is the
    stock label (``removal``, ``return``, ``misplaced``, ``restock``, ``sensor_fault``).
    ``t_start``/``t_end`` bound the handling; the weight is steady after ``t_end``.
    ``units`` counts units of ``sku`` (the SKU that moved: for ``misplaced`` it is not
    the slot's own SKU). A unit lifted and put back within one handling is no change;
    a unit carried away and brought back later is a ``removal`` then a ``return``.
    """

    slot: int
    t_start: float
    t_end: float
    grams: float
    units: int
    kind: str
    shopper: int | None = None
    sku: str | None = None


@dataclass(frozen=True, slots=True)
class Episode:
    """One visit of one person to the bay, with everything they did there.

    ``actor`` is ``shopper`` or ``staff``; ``intent`` is the shelf-interest label of a
    shopper's episode (``pass_by``, ``glance``, ``browse``, ``touch``, ``take``) or
    ``restock`` for staff. ``slot`` is the slot they attended to, if any.
    """

    person: int
    actor: str
    t_enter: float
    t_leave: float
    intent: str
    slot: int | None
    changes: tuple[TruthChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Handling:
    """A hand on one slot: the weight is unsettled from ``t_start`` to ``t_end``.

    ``steps`` are the load changes inside the handling as ``(t, grams)`` pairs
    (a lift is negative, a placement positive); they sum to the net change, which is
    zero for a unit lifted and put straight back. ``press_grams`` is how hard the
    hand leans on the shelf meanwhile. Loads are net of the tray, in grams.
    """

    slot: int
    person: int
    t_start: float
    t_end: float
    grams_before: float
    steps: tuple[tuple[float, float], ...]
    press_grams: float

    @property
    def grams_after(self) -> float:
        """Load on the slot once the hand has left."""
        return self.grams_before + sum(g for _, g in self.steps)


@dataclass(frozen=True, slots=True)
class SensorFault:
    """A fault of one channel: ``stuck`` value, ``offset_jump`` (at ``t_start``) or ``disconnect``."""

    channel: int
    slot: int
    kind: str
    t_start: float
    t_end: float
    grams: float = 0.0
