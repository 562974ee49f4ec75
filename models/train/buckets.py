"""Scores per crowding bucket, the guard fitted on them, and what a guarded unit emits.

Buckets are those of :mod:`models.guard` (changes per window, shoppers seen). The
records and items are the same gate-set windows (records as split for the items), so
a prediction of any contender can be scored per bucket like the whole set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.dataset import LabeledWindow
from models.guard import ALL, BUCKETS, BucketScore, Guard, window_buckets
from models.labels import IGNORE_INDEX, INTEREST_LABELS, STOCK_LABELS
from models.metrics import macro_f1
from models.train.data import Item
from models.train.evaluate import Predictions

Labels = dict[str, tuple[list[int], list[int]]]


def per_bucket(
    records: Sequence[LabeledWindow], items: Sequence[Item], pred: Predictions
) -> dict[str, dict[str, tuple[float, int]]]:
    """``{head: {bucket: (macro-F1, labels judged)}}`` of ``pred``; empty buckets left out."""
    if len(records) != len(items):
        raise ValueError(f"{len(records)} records for {len(items)} items")
    got: dict[str, dict[str, tuple[list[int], list[int]]]] = {"interest": {}, "stock": {}}
    for r, it, p_i, p_s in zip(records, items, pred.interest, pred.stock, strict=True):
        keys = (ALL, *window_buckets(r.window))
        for key in keys:
            if it.interest != IGNORE_INDEX:
                y, p = got["interest"].setdefault(key, ([], []))
                y.append(it.interest)
                p.append(int(p_i))
            for ys, ps in zip(it.stock, p_s, strict=True):
                if ys != IGNORE_INDEX:
                    y, p = got["stock"].setdefault(key, ([], []))
                    y.append(ys)
                    p.append(int(ps))
    n_cls = {"interest": len(INTEREST_LABELS), "stock": len(STOCK_LABELS)}
    return {
        head: {
            b: (macro_f1(per[b][0], per[b][1], n_cls[head]), len(per[b][0]))
            for b in BUCKETS
            if b in per
        }
        for head, per in got.items()
    }


def fit_guard(
    records: Sequence[LabeledWindow],
    items: Sequence[Item],
    student: Predictions,
    rules: Predictions,
    *,
    rule_thresholds: Mapping[str, Any],
    margin: float = 0.0,
    min_support: int = 20,
) -> Guard:
    """The guard of a bundle: per head and bucket, the student against the fitted rules."""
    s, r = per_bucket(records, items, student), per_bucket(records, items, rules)
    scores = {
        head: {b: BucketScore(s[head][b][0], r[head][b][0], s[head][b][1]) for b in s[head]}
        for head in s
    }
    return Guard.fit(scores, margin=margin, min_support=min_support, rules=rule_thresholds)


def guarded(
    guard: Guard,
    records: Sequence[LabeledWindow],
    student: Predictions,
    rules: Predictions,
) -> Predictions:
    """What a unit with ``guard`` emits: each head from the student or the rules."""
    interest, stock = [], []
    for r, si, ss, ri, rs in zip(
        records, student.interest, student.stock, rules.interest, rules.stock, strict=True
    ):
        interest.append(ri if guard.decider("interest", r.window) == "rules" else si)
        stock.append(rs if guard.decider("stock", r.window) == "rules" else ss)
    return Predictions(np.asarray(interest, np.int64), stock)
