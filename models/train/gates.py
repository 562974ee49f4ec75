"""Release gates: whether a trained student may become a bundle (pure; no I/O).

A bundle is produced only if, on the held-out (gate) set:

- the int8 student's macro-F1 is at least ``ratio`` x the teacher's for each head,
  and it agrees with the fp32 student on at least ``min_agreement`` of the windows
  (:func:`metric_gates`);
- its stock head is not worse than the fitted rules by more than ``tolerance``
  macro-F1, every class that occurs in training is predicted at least once, and the
  gate set holds every class the model may emit (one seen in training or predicted),
  so no class passes for want of a case to judge it on (:func:`shop_gates`); a failed
  check names the classes;
- the golden outputs reproduce when the written bundle is loaded by the runtime.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from models.labels import HEADS
from models.train.evaluate import HeadScore, Score


@dataclass
class Gates:
    """Outcome of every gate: ``(name, passed, detail)``."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(ok for _, ok, _ in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record one check."""
        self.checks.append((name, ok, detail))

    def failures(self) -> list[str]:
        """``name: detail`` of each failed check."""
        return [f"{n}: {d}" for n, ok, d in self.checks if not ok]


def metric_gates(
    teacher: Score,
    int8: Score,
    agreement: float,
    *,
    ratio: float = 0.97,
    min_agreement: float = 0.99,
) -> Gates:
    """The accuracy and agreement gates."""
    g = Gates()
    for head in ("interest", "stock"):
        t, s = teacher.head(head).macro_f1, int8.head(head).macro_f1
        g.add(
            f"{head} int8 >= {ratio:.0%} of teacher",
            s >= ratio * t,
            f"int8 {s:.3f} vs teacher {t:.3f} (ratio {s / t if t else float('inf'):.3f})",
        )
    g.add(
        f"int8 agrees with fp32 on >= {min_agreement:.0%}",
        agreement >= min_agreement,
        f"agreement {agreement:.4f}",
    )
    return g


def _classes(h: HeadScore, labels: tuple[str, ...], axis: int) -> dict[str, int]:
    """Count per class of a confusion matrix: true (``axis=1``) or predicted (``axis=0``)."""
    m = np.asarray(h.confusion, np.int64).reshape(len(labels), len(labels))
    counts = m.sum(axis=axis)
    return {lab: int(counts[i]) for i, lab in enumerate(labels)}


def shop_gates(
    model: Score,
    rules: Score,
    trained: Mapping[str, Collection[str]],
    *,
    tolerance: float = 0.02,
) -> Gates:
    """The gates that keep a bundle from doing the shop worse than the rules would.

    ``model`` and ``rules`` are scored on the same gate set; ``trained`` maps each head
    to the classes that occur in its training labels.
    """
    g = Gates()
    m, r = model.stock.macro_f1, rules.stock.macro_f1
    g.add(
        f"stock not worse than the rules by more than {tolerance:.2f}",
        m >= r - tolerance,
        f"model {m:.3f} vs rules {r:.3f} macro-F1 on the gate set",
    )
    for head, labels in HEADS.items():
        h = model.head(head)
        if not h.confusion:
            g.add(f"{head} scored on a gate set", False, f"no {head} label in the gate set")
            continue
        truth, predicted = _classes(h, labels, 1), _classes(h, labels, 0)
        seen = [c for c in labels if c in trained.get(head, ())]
        never = [c for c in seen if predicted[c] == 0]
        g.add(
            f"{head}: every class seen in training is predicted",
            not never,
            f"never predicted on the gate set: {', '.join(never)}"
            if never
            else f"{len(seen)} classes seen in training, each predicted",
        )
        may_emit = [c for c in labels if c in seen or predicted[c] > 0]
        lacking = [c for c in may_emit if truth[c] == 0]
        g.add(
            f"{head}: the gate set holds every class the model may emit",
            not lacking,
            "gate set has no "
            + ", ".join(f"{c} (predicted {predicted[c]}x)" for c in lacking)
            + " to judge it on"
            if lacking
            else f"{len(may_emit)} classes, each present",
        )
    return g


def trained_classes(labels: Mapping[str, Collection[int]]) -> dict[str, set[str]]:
    """Class names per head from label ids (``IGNORE_INDEX`` and unknown ids dropped)."""
    return {
        head: {HEADS[head][i] for i in ids if 0 <= i < len(HEADS[head])}
        for head, ids in labels.items()
    }
