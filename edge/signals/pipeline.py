"""The weight signal path of one bay: raw :class:`ReadingBlock` s in, :class:`WeightChange` s out.

:class:`WeightPipeline` wires the stages for the slots of a bay: counts of each
slot's channel are calibrated and decimated (:mod:`edge.signals.filters`), settle
detection with zero tracking runs on the filtered grams (:mod:`edge.signals.settle`),
and every settled step of at least ``min_units`` of the slot's unit weight becomes a
:class:`~models.types.WeightChange` with ``units = round(grams / unit_grams)``
(halves away from zero) and the slot's absolute load after it (``level_g``, grams above
the calibration's empty-slot tare). A smaller step whose weight went at least ``touch_g`` from the
baseline on the way becomes a change of 0 units: the shelf was handled (a unit lifted
and set back, a hand leaning on it) and no stock moved. A channel repeating one raw code is stuck
(:mod:`edge.signals.stuck`): its samples are left out until it answers again, so what
moved meanwhile is reported once, from the true load. Blocks may have any size; state
carries across them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.errors import CalibrationError
from edge.signals.calibration import ChannelCalibration
from edge.signals.config import SignalsConfig
from edge.signals.filters import Decimator
from edge.signals.settle import Settled, SettleTracker
from edge.signals.stuck import StuckFilter
from models.types import ReadingBlock, WeightChange


@dataclass(frozen=True, slots=True)
class SlotSignal:
    """What the signal path needs to know of a slot: its channel and unit weight."""

    slot: int
    channel: int
    unit_grams: float


def slot_signals(slots: Iterable[object]) -> list[SlotSignal]:
    """Plain slot values from config objects with ``slot``, ``channel``, ``unit_grams``."""
    return [
        SlotSignal(int(s.slot), int(s.channel), float(s.unit_grams))  # type: ignore[attr-defined]
        for s in slots
    ]


def whole_units(grams: float, unit_grams: float) -> int:
    """``grams / unit_grams`` rounded to a whole number, halves away from zero."""
    q = grams / unit_grams
    return int(math.copysign(math.floor(abs(q) + 0.5), q))


class WeightPipeline:
    """Raw counts of a bay in, settled weight changes per slot out."""

    def __init__(
        self,
        slots: Sequence[SlotSignal],
        calibrations: Mapping[int, ChannelCalibration],
        *,
        sps: int,
        config: SignalsConfig | None = None,
    ) -> None:
        if not slots:
            raise ValueError("a pipeline needs at least one slot")
        cfg = config or SignalsConfig()
        missing = [s.channel for s in slots if s.channel not in calibrations]
        if missing:
            raise CalibrationError(f"no calibration for channel(s) {missing}")
        self.config = cfg
        self.slots = list(slots)
        self._cols = np.array([s.channel for s in slots], dtype=np.intp)
        self._max_col = int(self._cols.max())
        self._contiguous = bool(np.array_equal(self._cols, np.arange(len(slots))))
        self._units = [s.unit_grams for s in slots]
        factor = max(1, sps // cfg.rate_hz)
        self.rate_hz = sps / factor
        self._decimator = Decimator(
            [calibrations[s.channel].offset_counts for s in slots],
            [calibrations[s.channel].counts_per_gram for s in slots],
            factor=factor,
            method=cfg.filter,
        )
        run = round(cfg.stuck_s * sps)
        self._stuck = StuckFilter(len(slots), max(2, run)) if cfg.stuck_s > 0 else None
        self._tracker = SettleTracker(
            len(slots),
            rate_hz=self.rate_hz,
            stable_band_g=cfg.stable_band_g,
            settle_band_g=cfg.settle_band_g,
            settle_s=cfg.settle_s,
            zero_track_tau_s=cfg.zero_track_tau_s,
            max_change_s=cfg.max_change_s,
        )

    def process(self, block: ReadingBlock) -> list[WeightChange]:
        """Feed one block; returns the changes that settled within it, in time order."""
        if block.channels <= self._max_col:
            raise ValueError(
                f"block has {block.channels} channels; slots need channel {self._max_col}"
            )
        if self._contiguous:
            n = len(self.slots)
            counts, valid = block.counts[:, :n], block.valid[:, :n]
        else:
            counts, valid = block.counts[:, self._cols], block.valid[:, self._cols]
        if self._stuck is not None:
            valid = self._stuck.push(counts, valid)
        t, grams, ok = self._decimator.push(block.t, counts, valid)
        settled = self._tracker.push(t, grams, ok)
        out = [c for c in (self._change(s) for s in settled) if c is not None]
        out.sort(key=lambda c: c.t_settled)
        return out

    def run(self, blocks: Iterable[ReadingBlock]) -> list[WeightChange]:
        """Every change of a stream of blocks."""
        out: list[WeightChange] = []
        for b in blocks:
            out.extend(self.process(b))
        return out

    def levels(self) -> dict[int, float]:
        """Current settled load of each slot in grams (NaN until it first settled)."""
        return {s.slot: float(b) for s, b in zip(self.slots, self._tracker.base, strict=True)}

    def stuck_channels(self) -> list[int]:
        """Channels whose ADC repeats one code right now (their samples are left out)."""
        if self._stuck is None:
            return []
        return [s.channel for s, st in zip(self.slots, self._stuck.stuck, strict=True) if st]

    def _change(self, s: Settled) -> WeightChange | None:
        unit = self._units[s.lane]
        if abs(s.grams) < self.config.min_units * unit:
            touch = self.config.touch_g
            if touch <= 0 or s.peak < touch or s.forced:
                return None
            units = 0
        else:
            units = whole_units(s.grams, unit)
        fit = max(0.0, 1.0 - 2.0 * abs(s.grams / unit - units))
        steady = 1.0 - 0.5 * min(1.0, s.spread / self.config.settle_band_g)
        conf = fit * steady * (0.5 if s.forced else 1.0)
        return WeightChange(
            slot=self.slots[s.lane].slot,
            grams=round(s.grams, 2),
            units=units,
            t_start=s.t_start,
            t_settled=s.t_settled,
            confidence=round(conf, 3),
            level_g=round(s.level, 2),
        )
