"""Windows with labels as JSON Lines: what training reads and the cloud store writes.

One line per window::

    {"v": 1, "window": {...EventWindow.to_dict()...},
     "labels": {"interest": "browse" | null, "stock": ["removal", null, ...]}}

``labels.stock`` has one entry per change of the window, in order. ``null`` means
"not labelled" (a window with nobody at the bay has no interest label; a change a
person has not judged yet has no stock label). Unlabelled windows still serve the
masked-token pretraining. :func:`read_jsonl` names the line of any bad record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from models.atomic import atomic_write
from models.errors import ModelError
from models.labels import INTEREST_LABELS, STOCK_LABELS
from models.window import EventWindow

DATASET_FORMAT: Final[int] = 1


class DatasetError(ModelError, ValueError):
    """A dataset file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabeledWindow:
    """A window with its (possibly missing) labels."""

    window: EventWindow
    interest: str | None = None
    stock: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.stock and self.window.changes:  # no stock labels: one None per change
            object.__setattr__(self, "stock", (None,) * len(self.window.changes))
        if self.interest is not None and self.interest not in INTEREST_LABELS:
            raise ValueError(f"unknown interest label {self.interest!r}")
        if self.stock and len(self.stock) != len(self.window.changes):
            raise ValueError(
                f"{len(self.stock)} stock labels for {len(self.window.changes)} changes"
            )
        for s in self.stock:
            if s is not None and s not in STOCK_LABELS:
                raise ValueError(f"unknown stock label {s!r}")

    @property
    def stock_labels(self) -> tuple[str | None, ...]:
        """One label (or ``None``) per change."""
        return self.stock

    @property
    def labelled(self) -> bool:
        """True when any head has a label here."""
        return self.interest is not None or any(s is not None for s in self.stock)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record."""
        return {
            "v": DATASET_FORMAT,
            "window": self.window.to_dict(),
            "labels": {"interest": self.interest, "stock": list(self.stock_labels)},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabeledWindow:
        """Read a JSON record; raises ``ValueError`` (or ``KeyError``/``TypeError``)."""
        if d.get("v") != DATASET_FORMAT:
            raise ValueError(f"record format {d.get('v')!r} is not {DATASET_FORMAT}")
        labels = d.get("labels") or {}
        return cls(
            window=EventWindow.from_dict(d["window"]),
            interest=labels.get("interest"),
            stock=tuple(labels.get("stock") or ()),
        )


def iter_jsonl(path: Path) -> Iterator[LabeledWindow]:
    """Records of a dataset file, one by one; blank lines are skipped."""
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield LabeledWindow.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError) as err:
                raise DatasetError(f"{path}:{n}: bad record: {err}") from None


def read_jsonl(path: Path) -> list[LabeledWindow]:
    """All records of a dataset file."""
    return list(iter_jsonl(path))


def write_jsonl(path: Path, records: Iterable[LabeledWindow]) -> int:
    """Write records atomically (temp file in the same folder, then rename); returns the count."""
    path = Path(path)
    n = 0
    with atomic_write(path) as f:
        for r in records:
            f.write(json.dumps(r.to_dict(), separators=(",", ":")) + "\n")
            n += 1
    return n
