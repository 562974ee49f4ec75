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
    """

    slot: int
    t_start: float
    t_end: float
    grams: float
    units: int
    kind: str
    shopper: int | None = None


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
