"""Per-channel tare and two-point calibration, persisted atomically as JSON.

Workflow: with the tray empty, :func:`tare` gives the zero offset in counts; with a
known weight on it, :func:`two_point` turns the two mean readings into a
:class:`ChannelCalibration` (counts per gram), refusing a zero or negative scale.
:class:`CalibrationStore` writes all channels to one JSON file through a temporary
file and ``os.replace``, so a crash never leaves half a calibration, and reads it back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.errors import CalibrationError
from models.atomic import atomic_write

FORMAT_VERSION = 1
MIN_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class ChannelCalibration:
    """How one channel's counts become grams: ``grams = (counts - offset) / counts_per_gram``."""

    channel: int
    offset_counts: float
    counts_per_gram: float
    known_grams: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.offset_counts):
            raise CalibrationError(f"channel {self.channel}: offset is not a finite number")
        if not math.isfinite(self.counts_per_gram) or self.counts_per_gram <= 0:
            raise CalibrationError(
                f"channel {self.channel}: scale must be a positive number of counts per gram, "
                f"got {self.counts_per_gram!r} (is the load cell wired backwards or was the "
                "known weight missing?)"
            )

    def grams(self, counts: float) -> float:
        """Grams for a raw reading."""
        return (counts - self.offset_counts) / self.counts_per_gram


def _mean_valid(counts: npt.ArrayLike, valid: npt.ArrayLike | None, what: str) -> float:
    c = np.asarray(counts, dtype=np.float64).ravel()
    if valid is not None:
        c = c[np.asarray(valid, dtype=bool).ravel()]
    if c.size < MIN_SAMPLES:
        raise CalibrationError(f"{what}: need at least {MIN_SAMPLES} valid samples, got {c.size}")
    # a trimmed mean: robust to a glitch, as precise as the mean on clean data
    lo, hi = np.percentile(c, [10, 90])
    kept = c[(c >= lo) & (c <= hi)]
    return float(kept.mean() if kept.size else np.median(c))


def tare(counts: npt.ArrayLike, valid: npt.ArrayLike | None = None) -> float:
    """Zero offset of a channel from readings with nothing (but the tray) on it."""
    return _mean_valid(counts, valid, "tare")


def two_point(
    channel: int,
    zero_counts: npt.ArrayLike,
    loaded_counts: npt.ArrayLike,
    known_grams: float,
    *,
    zero_valid: npt.ArrayLike | None = None,
    loaded_valid: npt.ArrayLike | None = None,
) -> ChannelCalibration:
    """Calibrate a channel from readings empty and with ``known_grams`` on it."""
    if not math.isfinite(known_grams) or known_grams <= 0:
        raise CalibrationError(f"channel {channel}: known weight must be > 0 g, got {known_grams}")
    zero = tare(zero_counts, zero_valid)
    loaded = _mean_valid(loaded_counts, loaded_valid, "known weight")
    return ChannelCalibration(channel, zero, (loaded - zero) / known_grams, float(known_grams))


class CalibrationStore:
    """All channels' calibrations in one JSON file, written atomically."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def save(self, calibrations: Mapping[int, ChannelCalibration]) -> None:
        """Write every calibration; the old file stays whole until the new one is complete."""
        doc = {
            "version": FORMAT_VERSION,
            "channels": [asdict(calibrations[ch]) for ch in sorted(calibrations)],
        }
        with atomic_write(self.path) as f:
            json.dump(doc, f, indent=2)

    def load(self) -> dict[int, ChannelCalibration]:
        """Read the calibrations back; a missing or damaged file is a :class:`CalibrationError`."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"{self.path}: no calibration yet (calibrate first)") from None
        except (OSError, json.JSONDecodeError) as err:
            raise CalibrationError(f"{self.path}: unreadable calibration: {err}") from None
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise CalibrationError(f"{self.path}: unknown calibration format")
        out: dict[int, ChannelCalibration] = {}
        try:
            for item in doc["channels"]:
                cal = ChannelCalibration(
                    int(item["channel"]),
                    float(item["offset_counts"]),
                    float(item["counts_per_gram"]),
                    None if item.get("known_grams") is None else float(item["known_grams"]),
                )
                out[cal.channel] = cal
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, CalibrationError):
                raise
            raise CalibrationError(f"{self.path}: malformed calibration entry: {err}") from None
        return out
