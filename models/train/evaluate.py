"""Predictions of every contender on the same windows, and their scores per head.

Contenders are the teacher and student in PyTorch, the exported student in
onnxruntime (fp32 and int8) and the rule baseline. Each yields a :class:`Predictions`
over the same encoded items, so scores and agreement compare like with like. Stock
is decoded through the runtime's physics mask (``models.runtime.decoding``) for every
model contender; ``masked=False`` shows what the mask changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from models.dataset import LabeledWindow
from models.labels import IGNORE_INDEX, INTEREST_LABELS, STOCK_LABELS
from models.metrics import confusion, macro_f1, per_class_f1
from models.rules import RuleBaseline
from models.runtime.base import InferenceBackend
from models.runtime.classifier import run_logits
from models.runtime.decoding import decode_stock
from models.tokens import Encoded
from models.train.data import Item, PadCollator, WindowSet
from models.train.model import ShelfBert

I64 = npt.NDArray[np.int64]


@dataclass
class Predictions:
    """Interest label id per item and stock label ids per item's changes."""

    interest: I64
    stock: list[I64]


@dataclass
class HeadScore:
    """Figures of one head: macro-F1, F1 per class, confusion matrix, support."""

    macro_f1: float
    per_class: dict[str, float]
    confusion: list[list[int]]
    n: int


@dataclass
class Score:
    """Both heads of one contender."""

    interest: HeadScore
    stock: HeadScore
    extra: dict[str, float] = field(default_factory=dict)

    def head(self, name: str) -> HeadScore:
        """Figures of ``name`` (``interest`` or ``stock``)."""
        return self.interest if name == "interest" else self.stock


def _stock_ids(logits: npt.ArrayLike, it: Item, masked: bool) -> I64:
    x = np.asarray(logits, np.float32)
    allowed = it.stock_mask() if masked else np.ones(x.shape, np.bool_)
    return np.asarray([k for k, _ in decode_stock(x, allowed)], np.int64)


def predict_torch(
    model: ShelfBert, items: Sequence[Item], batch_size: int = 64, *, masked: bool = True
) -> Predictions:
    """Predictions of a PyTorch model (stock through the physics mask unless ``masked=False``)."""
    model = model.eval()
    coll = PadCollator()
    ds = WindowSet(items)
    interest: list[int] = []
    stock: list[I64] = []
    with torch.no_grad():
        for start in range(0, len(ds), batch_size):
            batch = [ds[i] for i in range(start, min(len(ds), start + batch_size))]
            x = coll(batch)
            out = model(input_ids=x["input_ids"], attention_mask=x["attention_mask"])
            interest.extend(out.interest_logits.argmax(-1).tolist())
            s = out.stock_logits
            for b, it in enumerate(batch):
                logits = s[b, list(it["change_positions"])].numpy()
                stock.append(_stock_ids(logits, ds.items[start + b], masked))
    return Predictions(np.asarray(interest, np.int64), stock)


def predict_backend(
    backend: InferenceBackend, items: Sequence[Item], batch_size: int = 1, *, masked: bool = True
) -> Predictions:
    """Predictions of an inference backend (the runtime's own code path and decoding)."""
    interest: list[int] = []
    stock: list[I64] = []
    for start in range(0, len(items), batch_size):
        part = items[start : start + batch_size]
        chunk = [Encoded(it.ids, it.change_positions) for it in part]
        li, ls = run_logits(backend, chunk)
        interest.extend(li.argmax(-1).tolist())
        stock.extend(_stock_ids(x, it, masked) for x, it in zip(ls, part, strict=True))
    return Predictions(np.asarray(interest, np.int64), stock)


def predict_rules(rules: RuleBaseline, records: Sequence[LabeledWindow]) -> Predictions:
    """Predictions of the rule baseline (records as split for the items)."""
    interest, stock = [], []
    for r in records:
        i, s = rules.predict(r.window)
        interest.append(INTEREST_LABELS.index(i))
        stock.append(np.asarray([STOCK_LABELS.index(x) for x in s], np.int64))
    return Predictions(np.asarray(interest, np.int64), stock)


def _head(y: list[int], p: list[int], labels: Sequence[str]) -> HeadScore:
    m = confusion(y, p, len(labels))
    f1 = per_class_f1(m)
    return HeadScore(
        macro_f1=macro_f1(y, p, len(labels)),
        per_class={
            lab: float(f1[i]) for i, lab in enumerate(labels) if m[i].sum() or m[:, i].sum()
        },
        confusion=m.tolist(),
        n=len(y),
    )


def score(items: Sequence[Item], pred: Predictions) -> Score:
    """Both heads' figures of ``pred`` against the items' labels."""
    yi, pi, ys, ps = [], [], [], []
    for it, p_i, p_s in zip(items, pred.interest, pred.stock, strict=True):
        if it.interest != IGNORE_INDEX:
            yi.append(it.interest)
            pi.append(int(p_i))
        for y, p in zip(it.stock, p_s, strict=True):
            if y != IGNORE_INDEX:
                ys.append(y)
                ps.append(int(p))
    return Score(_head(yi, pi, INTEREST_LABELS), _head(ys, ps, STOCK_LABELS))


def agreement(a: Predictions, b: Predictions) -> float:
    """Share of items on which both heads of ``a`` and ``b`` decide the same."""
    if len(a.interest) == 0:
        return 1.0
    same = [
        ai == bi and np.array_equal(sa, sb)
        for ai, bi, sa, sb in zip(a.interest, b.interest, a.stock, b.stock, strict=True)
    ]
    return float(np.mean(same))
