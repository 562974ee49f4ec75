"""The guard: per crowding bucket, whether the student or the fitted rules decide a head.

A window falls in one bucket of each axis: changes per window (``0``, ``1-2``, ``3-4``,
``5+``) and shoppers the camera saw (``0``, ``1``, ``2+``). When a bundle is made, the
student and the fitted rules are scored per head on the gate set, over all windows
(bucket ``all``) and per bucket of each axis; :meth:`Guard.fit` gives a bucket to the
rules where their macro-F1 beats the student's by more than ``margin``. A bucket with
fewer than ``min_support`` labels on the gate set is too thin to judge: for stock the
rules decide it (the student has not shown it does the shop no harm there), for
interest it follows ``all``. On the unit, :meth:`Guard.decider` hands a head to the rules when either of the
window's two buckets says so, so a crowded window is never decided worse than the
rules did on the gate set. The guard travels in the bundle's manifest (``guard``, with
the fitted rule thresholds); a bundle without one is decided by the student alone.

Pure: scores in, decisions out; :meth:`Guard.from_dict` validates what a manifest says
and raises ``ValueError`` naming the key at fault.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from models.window import EventWindow

Who = Literal["model", "rules"]
GUARD_FORMAT: Final[int] = 1
HEAD_NAMES: Final[tuple[str, ...]] = ("interest", "stock")
CHANGE_BUCKETS: Final[tuple[str, ...]] = ("0", "1-2", "3-4", "5+")
SHOPPER_BUCKETS: Final[tuple[str, ...]] = ("0", "1", "2+")
ALL: Final[str] = "all"
BUCKETS: Final[tuple[str, ...]] = (
    ALL,
    *(f"changes:{b}" for b in CHANGE_BUCKETS),
    *(f"shoppers:{b}" for b in SHOPPER_BUCKETS),
)
"""Every bucket key a guard may name, in report order."""


def changes_bucket(n: int) -> str:
    """Bucket of a window with ``n`` weight changes."""
    return "0" if n <= 0 else "1-2" if n <= 2 else "3-4" if n <= 4 else "5+"


def shoppers_bucket(n: int) -> str:
    """Bucket of a window where the camera saw ``n`` shoppers."""
    return "0" if n <= 0 else "1" if n == 1 else "2+"


def window_buckets(w: EventWindow) -> tuple[str, str]:
    """The two bucket keys of a window: ``changes:…`` and ``shoppers:…``."""
    return (
        f"changes:{changes_bucket(len(w.changes))}",
        f"shoppers:{shoppers_bucket(w.shoppers_seen)}",
    )


@dataclass(frozen=True, slots=True)
class BucketScore:
    """One head in one bucket of the gate set: macro-F1 of each contender, labels judged."""

    student: float
    rules: float
    support: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Who decides one head in one bucket, and the figures that chose it."""

    decides: Who
    score: BucketScore | None = None


@dataclass(frozen=True)
class Guard:
    """Who decides each head in each bucket (a bucket not listed follows ``all``)."""

    heads: Mapping[str, Mapping[str, Verdict]] = field(default_factory=dict)
    margin: float = 0.0
    min_support: int = 20
    rules: Mapping[str, Any] | None = None

    @classmethod
    def fit(
        cls,
        scores: Mapping[str, Mapping[str, BucketScore]],
        *,
        margin: float = 0.0,
        min_support: int = 20,
        rules: Mapping[str, Any] | None = None,
        cautious: Collection[str] = ("stock",),
    ) -> Guard:
        """Verdicts from per-head, per-bucket scores (see the module docstring).

        In a ``cautious`` head a bucket the gate set cannot judge (fewer than
        ``min_support`` labels, or none) goes to the rules: the student has not shown
        it does the shop no harm there. In other heads it follows ``all``.
        """
        heads: dict[str, dict[str, Verdict]] = {}
        for head, per in scores.items():
            overall = per.get(ALL)
            base: Who = "model"
            if overall is not None and overall.support > 0:
                base = "rules" if overall.rules > overall.student + margin else "model"
            thin: Who = "rules" if head in cautious else base
            verdicts: dict[str, Verdict] = {ALL: Verdict(base, overall)}
            for key in BUCKETS[1:]:
                s = per.get(key)
                if s is None or s.support < min_support:
                    verdicts[key] = Verdict(thin, s)
                else:
                    verdicts[key] = Verdict("rules" if s.rules > s.student + margin else "model", s)
            heads[head] = verdicts
        return cls(heads, margin, min_support, rules)

    def who(self, head: str, bucket: str) -> Who:
        """Who decides ``head`` in ``bucket`` (the model where the guard says nothing)."""
        per = self.heads.get(head, {})
        v = per.get(bucket) or per.get(ALL)
        return v.decides if v is not None else "model"

    def decider(self, head: str, w: EventWindow) -> Who:
        """Who decides ``head`` of window ``w``: the rules if either of its buckets says so."""
        if any(self.who(head, b) == "rules" for b in window_buckets(w)):
            return "rules"
        return self.who(head, ALL)

    def ruled(self) -> dict[str, list[str]]:
        """Per head, the buckets the rules decide."""
        return {h: [b for b in BUCKETS if self.who(h, b) == "rules"] for h in self.heads}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest (:meth:`from_dict` reads it back)."""
        return {
            "format": GUARD_FORMAT,
            "margin": self.margin,
            "min_support": self.min_support,
            "rules": dict(self.rules) if self.rules is not None else None,
            "heads": {
                h: {
                    b: {"decides": v.decides}
                    | (
                        {
                            "student": round(v.score.student, 4),
                            "rules": round(v.score.rules, 4),
                            "support": v.score.support,
                        }
                        if v.score is not None
                        else {}
                    )
                    for b, v in per.items()
                }
                for h, per in self.heads.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "guard") -> Guard:
        """Read :meth:`to_dict`'s output; raises ``ValueError`` naming the key at fault."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: not an object")
        fmt = d.get("format")
        if fmt != GUARD_FORMAT:
            raise ValueError(f"{where}.format: {fmt!r}, this agent reads {GUARD_FORMAT}")
        margin = _number(d.get("margin", 0.0), f"{where}.margin", 0.0, 1.0)
        support = d.get("min_support", 20)
        if not isinstance(support, int) or isinstance(support, bool) or not 0 <= support <= 10**6:
            raise ValueError(f"{where}.min_support: {support!r} is not an integer 0..1000000")
        rules = d.get("rules")
        if rules is not None and not isinstance(rules, Mapping):
            raise ValueError(f"{where}.rules: not an object")
        raw = d.get("heads")
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}.heads: not an object")
        heads: dict[str, dict[str, Verdict]] = {}
        for h, per in raw.items():
            if h not in HEAD_NAMES:
                raise ValueError(f"{where}.heads: unknown head {h!r}; known: {HEAD_NAMES}")
            if not isinstance(per, Mapping):
                raise ValueError(f"{where}.heads.{h}: not an object")
            heads[h] = {}
            for b, v in per.items():
                at = f"{where}.heads.{h}.{b}"
                if b not in BUCKETS:
                    raise ValueError(f"{at}: unknown bucket; known: {', '.join(BUCKETS)}")
                if not isinstance(v, Mapping) or v.get("decides") not in ("model", "rules"):
                    raise ValueError(f"{at}.decides: must be 'model' or 'rules'")
                score = None
                if "student" in v:
                    n = v.get("support")
                    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 10**9:
                        raise ValueError(f"{at}.support: {n!r} is not a count")
                    score = BucketScore(
                        _number(v["student"], f"{at}.student", 0.0, 1.0),
                        _number(v.get("rules"), f"{at}.rules", 0.0, 1.0),
                        n,
                    )
                heads[h][b] = Verdict(v["decides"], score)
        return cls(heads, margin, support, dict(rules) if rules is not None else None)


def _number(x: Any, where: str, lo: float, hi: float) -> float:
    if (
        not isinstance(x, int | float)
        or isinstance(x, bool)
        or not math.isfinite(x)
        or not lo <= x <= hi
    ):
        raise ValueError(f"{where}: {x!r} is not a number in {lo:g}..{hi:g}")
    return float(x)
