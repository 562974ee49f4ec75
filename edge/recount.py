"""Staff recounts: a slot's counted units handed to the running agent through a folder.

Workflow: ``shelfsense edge recount --slot N --units U`` (or the cloud, later) calls
:func:`request_recount`, which writes one small JSON file into ``<data_dir>/recounts/``
atomically; the decision worker takes every waiting request at its next pass
(:func:`take_recounts`), resets the slot in its :class:`~edge.stock.StockBook` and
commits a ``level`` event saying so. A request written while the agent is stopped
waits for its next start. A file that is not a valid request is set aside as
``*.bad`` and named in the log, never applied.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from models.atomic import atomic_write

log = logging.getLogger(__name__)

RECOUNT_DIR = "recounts"
MAX_UNITS = 100_000
MAX_REQUEST_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Recount:
    """Staff counted ``units`` of the slot's own SKU on ``slot``."""

    slot: int
    units: int
    requested_at: float


def parse_recount(raw: bytes, *, where: str) -> Recount:
    """A request from its file's bytes; ``ValueError`` naming ``where`` and the field."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise ValueError(f"{where}: request larger than {MAX_REQUEST_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: a request is a JSON object")
    out: dict[str, int] = {}
    for key, top in (("slot", 63), ("units", MAX_UNITS)):
        v = doc.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
            raise ValueError(f"{where}: {key} must be a whole number 0..{top}, got {v!r}")
        out[key] = v
    at = doc.get("requested_at", 0.0)
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ValueError(f"{where}: requested_at must be a number, got {at!r}")
    return Recount(out["slot"], out["units"], float(at))


def request_recount(data_dir: Path, slot: int, units: int, *, now: float | None = None) -> Path:
    """Queue a recount for the agent; returns the request file written."""
    if not 0 <= slot <= 63:
        raise ValueError(f"slot must be 0..63, got {slot}")
    if not 0 <= units <= MAX_UNITS:
        raise ValueError(f"units must be 0..{MAX_UNITS}, got {units}")
    at = time.time() if now is None else now
    folder = Path(data_dir) / RECOUNT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns():020d}-{slot}.json"
    with atomic_write(path) as f:
        json.dump({"slot": slot, "units": units, "requested_at": at}, f)
    return path


def take_recounts(data_dir: Path) -> list[Recount]:
    """Every waiting request, oldest first; taken files are removed, bad ones set aside."""
    folder = Path(data_dir) / RECOUNT_DIR
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []
    out: list[Recount] = []
    for name in names:
        path = folder / name
        try:
            raw = path.read_bytes()
            out.append(parse_recount(raw, where=str(path)))
        except ValueError as err:
            log.error("recount request refused: %s", err)
            path.replace(path.with_suffix(".bad"))
            continue
        except OSError as err:
            log.error("recount request %s unreadable: %s", path, err)
            continue
        path.unlink(missing_ok=True)
    return out
