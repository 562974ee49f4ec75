"""Classification figures shared by the rule baseline, training gates and reports (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def confusion(
    y_true: Sequence[int] | npt.NDArray[np.int64],
    y_pred: Sequence[int] | npt.NDArray[np.int64],
    n: int,
) -> npt.NDArray[np.int64]:
    """``n x n`` counts, rows are the true class, columns the predicted one."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return m


def per_class_f1(m: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """F1 of each class from a confusion matrix (0 where a class is never true nor predicted)."""
    tp = np.diag(m).astype(np.float64)
    denom = m.sum(0) + m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def macro_f1(
    y_true: Sequence[int] | npt.NDArray[np.int64],
    y_pred: Sequence[int] | npt.NDArray[np.int64],
    n: int,
) -> float:
    """Mean F1 over the classes present in ``y_true`` (absent classes would only add noise)."""
    m = confusion(y_true, y_pred, n)
    present = m.sum(1) > 0
    if not present.any():
        return 0.0
    return float(per_class_f1(m)[present].mean())
