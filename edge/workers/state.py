"""What the sensing workers keep on disk: the stock book, written atomically.

A unit restarted after a crash or power cut goes on from the units per slot it last
committed events for (:func:`load_stock`); the file is replaced whole through a
temporary file and ``os.replace``, so it is never half-written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from edge.stock import SlotLike, StockBook
from models.atomic import atomic_write

log = logging.getLogger(__name__)


def save_stock(path: Path, book: StockBook) -> None:
    """Write the book; the old file stays whole until the new one is complete."""
    with atomic_write(path) as f:
        json.dump(book.to_dict(), f)


def load_stock(path: Path, slots: Iterable[SlotLike]) -> StockBook | None:
    """The saved book, or None when there is none or it cannot be read (logged)."""
    slots = list(slots)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StockBook.from_dict(slots, data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as err:
        log.warning("stock file %s unreadable, starting from capacity: %s", path, err)
        return None
