"""The model side of the stock bench: a student bundle for the sim unit, and who decided.

:func:`bundle_for_bench` trains the way ``make demo`` does
(:func:`shelfsense.demo_loop.train_bundle_for_demo`: simulated data from the real
pipeline, tiny student, gated, signed); when that student fails its gates it tries
once more on a larger training set (six 30-minute runs instead of three 15-minute
ones) and says which recipe gave the bundle, or that none did.
:func:`decisions` counts, over a unit's committed stock events, who decided them
(``decided_by``) and how many the stock book relabelled (``features.decided``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Bundle:
    """A bundle dir (None: every recipe failed its gates), its public key, how it was made."""

    path: Path | None
    key: Path
    recipe: str


def bundle_for_bench(work: Path, scenario: str, seed: int) -> Bundle:
    """The demo's recipe first; a larger training set if that student fails its gates."""
    from shelfsense.demo_loop import GATE_MINUTES, TRAIN_MINUTES, train_bundle_for_demo

    demo = (
        f"demo recipe: tiny student, 3 epochs, {scenario} seeds {seed + 100}-{seed + 102} "
        f"x {TRAIN_MINUTES} min, gated on heldout seed {seed + 200} x {GATE_MINUTES} min"
    )
    path, pub = train_bundle_for_demo(work / "demo", scenario, seed)
    if path is not None:
        return Bundle(path, pub, demo)
    print("   the demo recipe's student failed its gates: trying a larger training set")
    path, pub = train_bundle_for_demo(work / "larger", scenario, seed, runs=6, train_minutes=30)
    larger = (
        f"larger set: tiny student, 3 epochs, {scenario} seeds {seed + 100}-{seed + 105} "
        f"x 30 min, gated on heldout seed {seed + 200} x {GATE_MINUTES} min"
    )
    if path is not None:
        return Bundle(path, pub, larger)
    return Bundle(None, pub, f"none passed its gates ({demo}; {larger})")


@dataclass
class Decisions:
    """Stock events of one run: how many, decided by the model / the rules, relabelled."""

    stock: int = 0
    by_model: int = 0
    by_rules: int = 0
    relabelled: int = 0

    def cells(self) -> str:
        share = 100.0 * self.relabelled / self.stock if self.stock else 0.0
        return (
            f"{self.stock} | {self.by_model} | {self.by_rules} | {self.relabelled} ({share:.1f} %)"
        )


def decisions(events: Sequence[dict[str, Any]]) -> Decisions:
    """Who decided the committed stock events, and how many the book relabelled."""
    d = Decisions()
    for e in events:
        if e.get("kind") != "stock":
            continue
        d.stock += 1
        if e.get("decided_by") == "model":
            d.by_model += 1
        else:
            d.by_rules += 1
        if "decided" in (e.get("features") or {}):
            d.relabelled += 1
    return d
