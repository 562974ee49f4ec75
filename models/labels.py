"""The label taxonomy of the two decisions the model makes.

Shelf-interest is decided once per presence episode (a window); stock is decided once
per settled weight change inside a window. The order of each tuple is the order of the
model's output logits, so it is part of the bundle contract: a bundle's manifest
carries its labels and the runtime refuses a bundle whose labels it does not know.
"""

from __future__ import annotations

from typing import Final

INTEREST_LABELS: Final[tuple[str, ...]] = ("pass_by", "glance", "browse", "touch", "take")
"""Shelf-interest of one presence episode, weakest to strongest."""

INTEREST_MEANING: Final[dict[str, str]] = {
    "pass_by": "walked past the bay without stopping",
    "glance": "stopped briefly in front of the bay, did not reach for a slot",
    "browse": "stayed and looked, reached towards slots, handled nothing",
    "touch": "lifted a product and put it back (net stock unchanged)",
    "take": "left with at least one product from the bay",
}

STOCK_LABELS: Final[tuple[str, ...]] = (
    "none",
    "removal",
    "return",
    "misplaced",
    "restock",
    "sensor_fault",
)
"""What one settled weight change did to the stock of its slot."""

STOCK_MEANING: Final[dict[str, str]] = {
    "none": "no stock moved: a product lifted and set back, a lean, a bump",
    "removal": "units of the slot's own SKU left the slot",
    "return": "units of the slot's own SKU came back to it (a shopper put one back)",
    "misplaced": "something that is not the slot's SKU was put on it",
    "restock": "staff refilled the slot with several units",
    "sensor_fault": "the weight moved without anyone there: drift, creep, a failing cell",
}

HEADS: Final[dict[str, tuple[str, ...]]] = {"interest": INTEREST_LABELS, "stock": STOCK_LABELS}
"""Output heads of the model, by name, with their labels in logit order."""

IGNORE_INDEX: Final[int] = -100
"""Label id meaning "no label here" (a window without a shopper has no interest label)."""


def label_id(head: str, label: str) -> int:
    """The logit index of ``label`` in ``head``; raises ``ValueError`` for an unknown label."""
    labels = HEADS[head]
    try:
        return labels.index(label)
    except ValueError:
        raise ValueError(f"unknown {head} label {label!r}; known: {', '.join(labels)}") from None
