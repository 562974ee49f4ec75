"""Labelled accuracy of a candidate model against the current one, pure.

During a rollout's canary phase a unit runs the candidate in shadow beside the
current model; each shadow window then has two labels (the current model's, which
the unit acted on, and the candidate's). Labels that arrive later (a matched sale,
an operator's correction) give a truth for some of those windows. This module
counts, per head (event kind), how many labelled windows each model got right, and
decides whether the candidate is "not worse" than the current model within a
tolerance. Rows in, figures out; the service reads the rows from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelledWindow:
    """One shadow window that got a truth: the head, both models' labels, the truth."""

    head: str
    current: str
    candidate: str
    truth: str


SALE_TRUTH = "removal"
"""What a sale matched to a stock event says the event was."""


def truth_of(kind: str, *, sale_matched: bool, corrected: str | None) -> str | None:
    """The label a later fact gives an event: a correction wins, else a matched sale on a
    stock event means ``removal``; None when nothing says what it was."""
    if corrected is not None:
        return corrected
    if sale_matched and kind == "stock":
        return SALE_TRUTH
    return None


def labelled_window(
    kind: str,
    current: str,
    candidate: str,
    *,
    sale_matched: bool = False,
    corrected: str | None = None,
) -> LabelledWindow | None:
    """A shadow event as a scored row, or None while no label arrived for it."""
    truth = truth_of(kind, sale_matched=sale_matched, corrected=corrected)
    return None if truth is None else LabelledWindow(kind, current, candidate, truth)


@dataclass(frozen=True)
class HeadAccuracy:
    """Labelled windows of one head and how many each model got right."""

    windows: int = 0
    current_right: int = 0
    candidate_right: int = 0

    @property
    def current(self) -> float | None:
        """The current model's accuracy, or None without labelled windows."""
        return self.current_right / self.windows if self.windows else None

    @property
    def candidate(self) -> float | None:
        """The candidate's accuracy, or None without labelled windows."""
        return self.candidate_right / self.windows if self.windows else None

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready figures."""
        return {
            "windows": self.windows,
            "current_accuracy": self.current,
            "candidate_accuracy": self.candidate,
        }


def labelled_accuracy(rows: Iterable[LabelledWindow]) -> dict[str, HeadAccuracy]:
    """Per head: labelled windows, and how many the current model and the candidate got right."""
    acc: dict[str, HeadAccuracy] = {}
    for row in rows:
        h = acc.get(row.head, HeadAccuracy())
        acc[row.head] = HeadAccuracy(
            h.windows + 1,
            h.current_right + (row.current == row.truth),
            h.candidate_right + (row.candidate == row.truth),
        )
    return acc


@dataclass(frozen=True)
class LabelledVerdict:
    """Whether the labelled gate lets the canary promote; ``passed`` is None while it waits."""

    passed: bool | None
    why: str


def labelled_gate(
    accuracy: Mapping[str, HeadAccuracy], max_drop: float, min_windows: int
) -> LabelledVerdict:
    """Candidate not worse than the current model by more than ``max_drop`` on any head.

    Every head with labelled windows needs at least ``min_windows`` of them (and at
    least one head must have some), otherwise the verdict is to wait. ``max_drop`` is
    an absolute share (0.02 = two points of accuracy).
    """
    if max_drop < 0 or min_windows < 1:
        raise ValueError(f"max_drop {max_drop} must be >= 0 and min_windows {min_windows} >= 1")
    short = sorted(h for h, a in accuracy.items() if a.windows < min_windows)
    if not accuracy or short:
        have = ", ".join(f"{h} {accuracy[h].windows}" for h in short) or "none"
        return LabelledVerdict(
            None, f"waiting for {min_windows} labelled shadow windows per head (have {have})"
        )
    worse = []
    for head, a in sorted(accuracy.items()):
        drop = a.current_right / a.windows - a.candidate_right / a.windows
        if drop > max_drop + 1e-12:
            worse.append(
                f"{head}: candidate {a.candidate_right}/{a.windows} vs current "
                f"{a.current_right}/{a.windows}"
            )
    if worse:
        return LabelledVerdict(
            False, f"labelled accuracy worse by more than {max_drop:.0%}: " + "; ".join(worse)
        )
    return LabelledVerdict(True, "labelled accuracy not worse")
