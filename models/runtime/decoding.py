"""Masked decoding of the stock head: a label the measured change forbids is never chosen.

Every backend hands back raw logits; :func:`decode_stock` turns one window's stock
logits and the physics mask of its changes (:func:`models.physics.allowed_mask`) into
labels and confidences. Forbidden logits are dropped before the softmax, so the
confidence is the share of the allowed labels. Logits a broken model may give (NaN,
infinities) are made finite first: whatever the model says, the chosen label is one
the change allows (``sensor_fault`` always is, so a row is never empty).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from models.physics import DECODING, BoolArray

DECODINGS: Final[frozenset[str]] = frozenset({DECODING})
"""Decodings this runtime knows; a bundle naming another one is refused."""

_BIG: Final[float] = 1e30


def masked_probs(logits: npt.ArrayLike, allowed: BoolArray) -> npt.NDArray[np.float32]:
    """Softmax over the allowed labels of each row (0 for forbidden ones); shape of ``logits``."""
    x = np.nan_to_num(np.asarray(logits, np.float64), nan=-_BIG, posinf=_BIG, neginf=-_BIG)
    if x.shape != allowed.shape:
        raise ValueError(f"stock logits {x.shape} and physics mask {allowed.shape} differ")
    if x.size and not allowed.any(axis=-1).all():
        raise ValueError("a physics mask row allows no label")
    key = np.where(allowed, x, -np.inf)
    if key.size == 0:
        return key.astype(np.float32)
    e = np.exp(key - key.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def decode_stock(logits: npt.ArrayLike, allowed: BoolArray) -> list[tuple[int, float]]:
    """``(label index, confidence)`` per row of ``logits`` under the physics mask ``allowed``."""
    p = masked_probs(logits, allowed)
    k = np.where(allowed, p, -1.0).argmax(axis=-1) if p.size else np.zeros(0, np.int64)
    return [(int(i), float(p[r, i])) for r, i in enumerate(k)]


def decode_unmasked(logits: npt.ArrayLike) -> list[tuple[int, float]]:
    """The plain argmax, ignoring physics (only to measure what the mask changes)."""
    x = np.asarray(logits, np.float64)
    return decode_stock(x, np.ones(x.shape, np.bool_))
