"""Event windows built from pipeline-shaped values (WeightChange, Presence), with labels.

A small seeded generator of plausible bays for unit tests of the model code: what a
shopper of each intent leaves in the camera zones and on the load cells, with the
overlap between intents that makes the decision non-trivial.
"""

from __future__ import annotations

import numpy as np

from models.dataset import LabeledWindow
from models.labels import INTEREST_LABELS
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext

UNIT_GRAMS = {0: 330.0, 1: 120.0, 2: 45.0, 3: 500.0}

_DWELL = {
    "pass_by": (0.4, 1.2),
    "glance": (1.0, 4.0),
    "browse": (4.0, 15.0),
    "touch": (3.0, 12.0),
    "take": (3.0, 14.0),
}
_MOTION = {
    "pass_by": (0.0, 0.2),
    "glance": (0.05, 0.35),
    "browse": (0.25, 0.7),
    "touch": (0.4, 0.9),
    "take": (0.4, 0.95),
}


def _change(
    rng: np.random.Generator,
    slot: int,
    units: int,
    t: float,
    *,
    extra: float = 0.0,
    conf: float = 0.9,
) -> WeightChange:
    g = units * UNIT_GRAMS[slot] + extra + rng.normal(0, 2.0)
    ug = UNIT_GRAMS[slot]
    return WeightChange(slot, float(g), round(g / ug), t, t + float(rng.uniform(0.5, 2.0)), conf)


def make_window(rng: np.random.Generator, episode: int, intent: str | None = None) -> LabeledWindow:
    """One labelled window; ``intent=None`` draws one (or a no-presence fault window)."""
    t0 = float(episode * 120.0)
    slot = int(rng.integers(0, len(UNIT_GRAMS)))
    ctx = {
        s: SlotContext(
            s,
            UNIT_GRAMS[s],
            int(rng.integers(0, 4)),
            float(rng.uniform(5, 900)),
            int(rng.integers(0, 20)),
        )
        for s in UNIT_GRAMS
    }
    kind = intent or str(
        rng.choice(
            [*INTEREST_LABELS, "restock", "fault"], p=[0.2, 0.18, 0.17, 0.15, 0.2, 0.05, 0.05]
        )
    )
    if kind == "fault":
        c = WeightChange(
            slot, float(rng.uniform(-25, 25)), 0, t0, t0 + 6.0, float(rng.uniform(0.05, 0.4))
        )
        w = EventWindow(
            "bay-1", episode, t0, t0 + 6, int(rng.integers(0, 24)), None, (), (c,), ctx, 0
        )
        return LabeledWindow(w, None, ("sensor_fault",))
    lo, hi = _DWELL.get(kind, (20.0, 60.0))
    dwell = float(rng.uniform(lo, hi))
    mlo, mhi = _MOTION.get(kind, (0.3, 0.8))
    motion = float(rng.uniform(mlo, mhi))
    bay = Presence("bay", t0, t0 + dwell, dwell, motion, int(rng.integers(1, 3)))
    reaches: list[Presence] = []
    changes: list[WeightChange] = []
    labels: list[str] = []
    if kind in ("browse", "touch", "take", "restock"):
        rd = float(rng.uniform(0.5, dwell * 0.6))
        reaches.append(Presence(f"slot-{slot}", t0 + 0.5, t0 + 0.5 + rd, rd, motion, 1))
    if kind == "take":
        n = int(rng.integers(1, 3))
        changes.append(_change(rng, slot, -n, t0 + 1.0))
        labels.append("removal")
        if rng.random() < 0.2:
            other = (slot + 1) % len(UNIT_GRAMS)
            changes.append(_change(rng, other, 0, t0 + 2.0, extra=UNIT_GRAMS[slot] * 0.7))
            labels.append("misplaced")
    elif kind == "touch":
        if rng.random() < 0.5:
            changes.append(_change(rng, slot, -1, t0 + 1.0))
            changes.append(_change(rng, slot, 1, t0 + 3.0))
            labels += ["removal", "return"]
        elif rng.random() < 0.5:
            changes.append(_change(rng, slot, 0, t0 + 1.0, conf=0.6))
            labels.append("none")
    elif kind == "restock":
        changes.append(_change(rng, slot, int(rng.integers(3, 9)), t0 + 2.0))
        labels.append("restock")
    interest = kind if kind in INTEREST_LABELS else None
    w = EventWindow(
        "bay-1",
        episode,
        t0,
        t0 + dwell,
        int(rng.integers(8, 21)),
        bay,
        tuple(reaches),
        tuple(changes),
        ctx,
        int(rng.integers(0, 4)),
    )
    return LabeledWindow(w, interest, tuple(labels))


def make_records(n: int, seed: int) -> list[LabeledWindow]:
    """``n`` labelled windows from a seeded generator."""
    rng = np.random.default_rng(seed)
    return [make_window(rng, i) for i in range(n)]
