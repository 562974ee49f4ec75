"""Typed facts handed from one stage of the sensing pipeline to the next.

Raw load-cell counts come in as :class:`RawReading` (one channel) or
:class:`ReadingBlock` (many samples of many channels, the form the signal path
processes); settled weight changes leave the signal stage as :class:`WeightChange`;
presence episodes leave the camera stage as :class:`Presence`.

Times are seconds on the unit's monotonic clock (or the simulator's clock),
so that a stream can be replayed faster than real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

import numpy as np
import numpy.typing as npt


class ReadingStatus(IntFlag):
    """Per-channel status bits of a raw reading (the MCU protocol carries the same bits)."""

    OK = 0
    SATURATED = 1  # code 0x7FFFFF or 0x800000: the ADC is at its rail
    NOT_READY = 2  # DOUT never went low before the timeout
    POWER_DOWN = 4  # PD_SCK stayed high >= 60 us during the read: the chip reset
    DISCONNECTED = 8  # no HX711 answers on this channel
    STALE = 16  # the value repeats a previous sample (MCU could not read in time)


@dataclass(frozen=True, slots=True)
class RawReading:
    """One 24-bit two's-complement sample of one load-cell channel."""

    channel: int
    t: float
    counts: int
    status: ReadingStatus = ReadingStatus.OK

    @property
    def valid(self) -> bool:
        """True when the sample can be used."""
        return self.status == ReadingStatus.OK


@dataclass(frozen=True, slots=True)
class ReadingBlock:
    """Samples of many channels at the same instants.

    ``t`` has shape ``(n,)``; ``counts`` and ``valid`` have shape ``(n, channels)``.
    Invalid samples keep whatever counts they had but must not be used.
    """

    t: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int32]
    valid: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        n = self.t.shape[0]
        if self.counts.ndim != 2 or self.counts.shape[0] != n:
            raise ValueError(f"counts must have shape (n={n}, channels), got {self.counts.shape}")
        if self.valid.shape != self.counts.shape:
            raise ValueError(f"valid shape {self.valid.shape} != counts {self.counts.shape}")

    @property
    def channels(self) -> int:
        """Number of channels in the block."""
        return int(self.counts.shape[1])

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def readings(self) -> list[RawReading]:
        """The block as individual readings (slow; for tests and debugging)."""
        out: list[RawReading] = []
        for i in range(len(self)):
            for ch in range(self.channels):
                status = ReadingStatus.OK if self.valid[i, ch] else ReadingStatus.NOT_READY
                out.append(RawReading(ch, float(self.t[i]), int(self.counts[i, ch]), status))
        return out


@dataclass(frozen=True, slots=True)
class WeightChange:
    """A settled change of weight on one slot, in grams and whole units of its SKU.

    ``grams`` is signed: negative when weight left the shelf.
    ``units`` is ``round(grams / unit_grams)`` (signed); ``confidence`` in [0, 1]
    says how well the change fits a whole number of units and how steady it settled.
    ``level_g`` is the slot's absolute load once settled, grams above the empty-slot
    tare of its calibration (``None`` where unknown, e.g. a window read back from
    JSON): the scale's own figure, from which the unit counts what is on the slot.
    """

    slot: int
    grams: float
    units: int
    t_start: float
    t_settled: float
    confidence: float
    level_g: float | None = None


@dataclass(frozen=True, slots=True)
class Presence:
    """One episode of someone in a camera zone: when, how long, how much they moved."""

    zone: str
    t_enter: float
    t_leave: float
    dwell: float
    peak_motion: float
    entries: int
