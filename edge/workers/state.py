"""What the sensing workers keep on disk: the stock book and the sim mark, written atomically.

A unit restarted after a crash or power cut goes on from the stock book it last
committed events for (:func:`load_stock`: foreign items, offsets, levels; the counts
themselves come from the scale again); a simulated unit goes on from the last episode
it committed (:func:`load_sim_mark`) when it plays the same run again. Files are
replaced whole through a temporary file and ``os.replace``, never half-written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.stock import SlotLike, StockBook
from edge.stock_config import StockConfig
from models.atomic import atomic_write

log = logging.getLogger(__name__)


def save_stock(path: Path, book: StockBook) -> None:
    """Write the book; the old file stays whole until the new one is complete."""
    with atomic_write(path) as f:
        json.dump(book.to_dict(), f)


def load_stock(
    path: Path, slots: Iterable[SlotLike], *, config: StockConfig | None = None
) -> StockBook | None:
    """The saved book, or None when there is none or it cannot be read (logged)."""
    slots = list(slots)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StockBook.from_dict(slots, data, config=config)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as err:
        log.warning("stock file %s unreadable, counting from the scale alone: %s", path, err)
        return None


@dataclass(frozen=True, slots=True)
class SimMark:
    """How far a simulated day got: its run (scenario, seed, hours), last episode and time."""

    run: dict[str, object]
    episode: int
    mono_time: float
    done: bool = False


def save_sim_mark(path: Path, mark: SimMark) -> None:
    """Write the mark (not fsynced: losing it costs a longer replay, never an event)."""
    with atomic_write(path, durable=False) as f:
        json.dump(asdict(mark), f)


def load_sim_mark(path: Path) -> SimMark | None:
    """The saved mark, or None (none, or unreadable: logged)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return SimMark(
            dict(doc["run"]), int(doc["episode"]), float(doc["mono_time"]), bool(doc["done"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as err:
        log.warning("sim mark %s unreadable, the day starts over: %s", path, err)
        return None
