"""Labelled windows as tensors: encoding, padding and masked-token batches.

:func:`encode_records` tokenizes once; :class:`WindowSet` serves the encodings to a
``torch`` DataLoader or the HF Trainer; :class:`PadCollator` pads a batch and places
the stock labels at each change's ``[CHG]`` position (and the physics mask of each
change, :mod:`models.physics`, which the stock loss applies as the runtime does); :class:`MaskCollator` makes
masked-token pretraining batches (15 % of value tokens; 80/10/10 mask/random/keep).
:func:`class_weights` weighs rare classes up so that a few ``return`` or ``misplaced``
changes among hundreds of removals still shape the stock head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from models.dataset import LabeledWindow
from models.labels import IGNORE_INDEX, INTEREST_LABELS, STOCK_LABELS
from models.physics import allowed_row
from models.tokens import CLS, MASK, PAD, SEP, ShelfTokenizer


@dataclass(frozen=True, slots=True)
class Item:
    """One encoded window with label ids (``IGNORE_INDEX`` where unlabelled).

    ``allowed`` holds each change's physics mask over the stock labels (empty: every
    label allowed, for items made without their changes).
    """

    ids: tuple[int, ...]
    change_positions: tuple[int, ...]
    interest: int
    stock: tuple[int, ...]
    allowed: tuple[tuple[bool, ...], ...] = ()

    def stock_mask(self) -> npt.NDArray[np.bool_]:
        """The physics mask of the item's changes, shape ``(changes, stock labels)``."""
        if not self.allowed:
            return np.ones((len(self.change_positions), len(STOCK_LABELS)), np.bool_)
        return np.asarray(self.allowed, np.bool_)


def split_records(records: Sequence[LabeledWindow], tok: ShelfTokenizer) -> list[LabeledWindow]:
    """Records whose windows fit one sequence (longer ones split; interest stays on the first)."""
    out = []
    for r in records:
        parts = tok.split(r.window)
        if len(parts) == 1:
            out.append(r)
            continue
        labels = r.stock_labels
        start = 0
        for k, w in enumerate(parts):
            n = len(w.changes)
            out.append(LabeledWindow(w, r.interest if k == 0 else None, labels[start : start + n]))
            start += n
    return out


def encode_records(records: Sequence[LabeledWindow], tok: ShelfTokenizer) -> list[Item]:
    """Tokenize labelled windows; each must fit one sequence (see :func:`split_records`)."""
    items = []
    for r in records:
        e = tok.encode(r.window)
        stock = tuple(
            STOCK_LABELS.index(s) if s is not None else IGNORE_INDEX for s in r.stock_labels
        )
        interest = INTEREST_LABELS.index(r.interest) if r.interest is not None else IGNORE_INDEX
        allowed = tuple(allowed_row(c.units, c.grams) for c in r.window.changes)
        items.append(Item(e.ids, e.change_positions, interest, stock, allowed))
    return items


def class_weights(
    items: Sequence[Item], power: float = 0.5, cap: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class loss weights of both heads, ``(interest, stock)``: ``(1 / frequency) ** power``.

    Normalised so that the labelled items' mean weight is 1 (the loss keeps its scale),
    capped at ``cap`` times the lightest class; a class with no items weighs 1.
    ``power`` 0 weighs all classes alike, 1 balances them fully.
    """

    def weights(labels: list[int], n_classes: int) -> torch.Tensor:
        counts = torch.bincount(torch.tensor(labels, dtype=torch.long), minlength=n_classes)
        present = counts > 0
        w = torch.ones(n_classes)
        if not present.any():
            return w
        w[present] = counts[present].float().pow(-power)
        w[present] = torch.clamp(w[present], max=float(w[present].min()) * cap)
        w[present] /= float((w[present] * counts[present]).sum() / counts[present].sum())
        return w

    interest = [it.interest for it in items if it.interest != IGNORE_INDEX]
    stock = [s for it in items for s in it.stock if s != IGNORE_INDEX]
    return weights(interest, len(INTEREST_LABELS)), weights(stock, len(STOCK_LABELS))


class WindowSet(Dataset[dict[str, Any]]):
    """Encoded windows as the dicts the collators take."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        return {
            "ids": it.ids,
            "change_positions": it.change_positions,
            "interest": it.interest,
            "stock": it.stock,
            "allowed": it.stock_mask(),
        }


class PadCollator:
    """Pads a batch to its longest window and builds the label and physics-mask tensors.

    ``stock_allowed`` has shape ``(B, L, stock labels)``: each change's physics mask
    at its ``[CHG]`` position, every label allowed elsewhere (no label there anyway).
    """

    def __call__(self, batch: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        n = max(len(b["ids"]) for b in batch)
        ids = torch.full((len(batch), n), PAD, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        stock = torch.full((len(batch), n), IGNORE_INDEX, dtype=torch.long)
        allowed = torch.ones((len(batch), n, len(STOCK_LABELS)), dtype=torch.bool)
        for i, b in enumerate(batch):
            k = len(b["ids"])
            ids[i, :k] = torch.tensor(b["ids"], dtype=torch.long)
            mask[i, :k] = 1
            for pos, lab in zip(b["change_positions"], b["stock"], strict=True):
                stock[i, pos] = lab
            if "allowed" in b:
                pos = list(b["change_positions"])
                allowed[i, pos] = torch.as_tensor(np.asarray(b["allowed"], np.bool_))
        interest = torch.tensor([b["interest"] for b in batch], dtype=torch.long)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "interest_labels": interest,
            "stock_labels": stock,
            "stock_allowed": allowed,
        }


class MaskCollator:
    """Masked-token batches for pretraining (``labels`` is ``IGNORE_INDEX`` except at masks)."""

    def __init__(self, vocab_size: int, *, prob: float = 0.15, seed: int = 0) -> None:
        self.vocab_size = vocab_size
        self.prob = prob
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, batch: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        padded = PadCollator()(batch)
        ids = padded["input_ids"].clone()
        special = (ids == PAD) | (ids == CLS) | (ids == SEP)
        pick = (torch.rand(ids.shape, generator=self.gen) < self.prob) & ~special
        labels = torch.where(pick, ids, torch.full_like(ids, IGNORE_INDEX))
        roll = torch.rand(ids.shape, generator=self.gen)
        ids[pick & (roll < 0.8)] = MASK
        rand = torch.randint(5, self.vocab_size, ids.shape, generator=self.gen)
        swap = pick & (roll >= 0.8) & (roll < 0.9)
        ids[swap] = rand[swap]
        return {"input_ids": ids, "attention_mask": padded["attention_mask"], "labels": labels}
