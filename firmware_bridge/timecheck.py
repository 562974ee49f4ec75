"""Time plausibility of the MCU's frames: a frame that passes CRC-16 may still lie.

CRC-16 lets about one damaged frame in 65,536 through. A damaged ``mcu_us`` that
slips past it would, unwrapped naively, move every later timestamp by up to 2**32 µs
(71.6 min), silently and for good. :class:`StreamClock` therefore accepts a frame
only when the MCU's time step matches its sequence step: ``dt ≈ dseq × period``
within a tolerance, ``period`` being learned from the stream itself (until it is,
only steps between :data:`MIN_PERIOD_US` and :data:`MAX_PERIOD_US` per seq pass).
The tolerance (a factor :data:`FACTOR` either way) is wide because a real MCU's
step does vary: waiting for a dying HX711 stretches it to 4-8 periods for a few
frames. What it must catch is the step that would wrap the u32 clock (a frame
behind its predecessor, or 2**31 µs ahead): a small error moves only that frame's
own time, since the next frame's step is taken from it and puts time right.
A rejected frame is dropped and counted (nothing is decided from it) and time does
not move. When :data:`RESYNC_FRAMES` rejected frames in a row agree with each other
(the MCU rebooted, or the frame before them was the bad one), the clock follows
them again, continuing time at one period per frame, so it never jumps.

Across a reconnect it counts the frames the MCU sent while nobody read, when the
seq and time steps agree on it (``reconnect_lost_frames``), and otherwise says the
loss is unknown (``reconnect_unknown``; the link estimates it from the host clock).
Pure: values in, values out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

SEQ_MASK: Final = 0xFFFF
US_MASK: Final = 0xFFFFFFFF
HALF_SEQ: Final = 0x8000
MIN_PERIOD_US: Final = 0  # before the period is known: time must not go back ...
MAX_PERIOD_US: Final = 1_000_000  # ... by at most a second per seq step
FACTOR: Final = 8.0  # once known: within period/8 .. period*8 per seq step
LEARN_STEPS: Final = 8  # single-seq steps before the period is trusted
RESYNC_FRAMES: Final = 4  # consistent rejected frames in a row: follow them


@dataclass(slots=True)
class ClockStats:
    """Sequence and time accounting of a stream (:class:`StreamClock` keeps it).

    ``lost_frames`` sums the frames missing across ``seq_gaps``; ``seq_restarts``
    counts the MCU's seq going back and the clock following it (a reboot);
    ``duplicates`` frames repeated as sent; ``implausible_time`` frames dropped
    because their time step did not match their seq step; ``time_resyncs`` how
    often the clock followed a run of such frames; ``reconnect_lost_frames`` the
    frames sent while the port was away, ``reconnect_unknown`` reconnects after
    which that could not be told.
    """

    seq_gaps: int = 0
    lost_frames: int = 0
    seq_restarts: int = 0
    duplicates: int = 0
    implausible_time: int = 0
    time_resyncs: int = 0
    reconnect_lost_frames: int = 0
    reconnect_unknown: int = 0


def step_fits(dseq: int, dt_us: int, period_us: float | None) -> bool:
    """Whether an MCU time step of ``dt_us`` fits a seq step of ``dseq`` (1..32767)."""
    if period_us is None:
        return dseq * MIN_PERIOD_US <= dt_us <= dseq * MAX_PERIOD_US
    expected = dseq * period_us
    return expected / FACTOR <= dt_us <= expected * FACTOR


class StreamClock:
    """Per frame: its unwrapped time in µs, or ``None`` when it is dropped.

    A frame is dropped when its time step does not fit its seq step, or when it
    repeats the last frame exactly (a duplicate). Counters go to :attr:`stats`.
    """

    def __init__(self, stats: ClockStats | None = None, *, check: bool = True) -> None:
        self.stats = stats or ClockStats()
        self.check = check
        self.period_us: float | None = None
        self._learn: list[int] = []
        self._last: tuple[int, int] | None = None  # (seq, mcu_us) of the last accepted frame
        self._prev: tuple[int, int, int] | None = None  # (seq, mcu_us, time_us) of the one before
        self._time_us = 0
        self._suspects: list[tuple[int, int]] = []
        self._arrived = 0  # frames since the last accepted one (dropped ones included)
        self._before: tuple[int, int, float | None] | None = None  # across a reconnect

    def restart(self) -> None:
        """A new connection: the next frame starts the stream (its loss is counted)."""
        if self._last is not None:
            self._before = (*self._last, self.period_us)
        self._last, self._prev = None, None
        self._suspects, self._arrived = [], 0
        self._learn = []
        self.period_us = None

    def step(self, seq: int, mcu_us: int) -> int | None:
        """The unwrapped time of the frame ``(seq, mcu_us)`` in µs, or ``None``: dropped."""
        if self._last is None:
            self._count_reconnect(seq, mcu_us)
            self._last, self._time_us = (seq, mcu_us), mcu_us
            return mcu_us
        last_seq, last_us = self._last
        dseq = (seq - last_seq) & SEQ_MASK
        dt = (mcu_us - last_us) & US_MASK
        self._arrived += 1
        if not self.check:
            return self._take_unchecked(seq, mcu_us, dseq, dt)
        if 0 < dseq < HALF_SEQ and step_fits(dseq, dt, self.period_us):
            self._suspects, self._arrived = [], 0
            if dseq == 1:
                self._learn_period(dt)
            else:
                self.stats.seq_gaps += 1
                self.stats.lost_frames += dseq - 1
            self._prev = (last_seq, last_us, self._time_us)
            self._last = (seq, mcu_us)
            self._time_us += dt
            return self._time_us
        if dseq == 0 and dt == 0:
            self.stats.duplicates += 1
            return None
        return self._suspect(seq, mcu_us)

    # ---------------------------------------------------------------- inside

    def _take_unchecked(self, seq: int, mcu_us: int, dseq: int, dt: int) -> int:
        if dseq == 0:
            self.stats.duplicates += 1
        elif dseq >= HALF_SEQ:
            self.stats.seq_restarts += 1
        elif dseq > 1:
            self.stats.seq_gaps += 1
            self.stats.lost_frames += dseq - 1
        self._last, self._arrived = (seq, mcu_us), 0
        self._time_us += dt
        return self._time_us

    def _suspect(self, seq: int, mcu_us: int) -> int | None:
        """A frame that does not fit: dropped, unless it ends a run that agrees with itself."""
        run = self._suspects
        if run:
            pseq, pus = run[-1]
            dseq = (seq - pseq) & SEQ_MASK
            if not (0 < dseq < HALF_SEQ and step_fits(dseq, (mcu_us - pus) & US_MASK, None)):
                run.clear()
        run.append((seq, mcu_us))
        del run[:-RESYNC_FRAMES]
        if self._prev is not None and len(run) >= 2 and all(self._fits_prev(f) for f in run):
            # these agree with the frame before the last accepted one: that one was bad
            pseq, pus, ptime = self._prev
            self.stats.implausible_time += 1
            self._time_us = ptime + ((mcu_us - pus) & US_MASK)
            self._last, self._prev = (seq, mcu_us), None
            self._suspects, self._arrived = [], 0
            return self._time_us
        period = _agreed_period(run) if len(run) == RESYNC_FRAMES else None
        if period is None:
            self.stats.implausible_time += 1
            return None
        assert self._last is not None
        self.stats.time_resyncs += 1
        if (run[0][0] - self._last[0]) & SEQ_MASK >= HALF_SEQ:
            self.stats.seq_restarts += 1
        # time goes on at one period per frame since the last good one: it never jumps
        self._time_us += round((self.period_us or period) * self._arrived)
        self.period_us, self._learn = period, []
        self._last, self._prev = (seq, mcu_us), None
        self._suspects, self._arrived = [], 0
        return self._time_us

    def _fits_prev(self, frame: tuple[int, int]) -> bool:
        assert self._prev is not None
        pseq, pus, _ = self._prev
        dseq = (frame[0] - pseq) & SEQ_MASK
        return 0 < dseq < HALF_SEQ and step_fits(dseq, (frame[1] - pus) & US_MASK, self.period_us)

    def _learn_period(self, dt: int) -> None:
        if self.period_us is None:
            self._learn.append(dt)
            if len(self._learn) >= LEARN_STEPS:
                mid = sorted(self._learn)[len(self._learn) // 2]
                self.period_us = float(mid) if mid > 0 else None
                self._learn = []
        else:
            self.period_us += (dt - self.period_us) / 16.0

    def _count_reconnect(self, seq: int, mcu_us: int) -> None:
        before, self._before = self._before, None
        if before is None:
            return
        bseq, bus, period = before
        dseq = (seq - bseq) & SEQ_MASK
        dt = (mcu_us - bus) & US_MASK
        if period is not None and 0 < dseq < HALF_SEQ and step_fits(dseq, dt, period):
            self.stats.reconnect_lost_frames += dseq - 1
        else:
            self.stats.reconnect_unknown += 1


def _agreed_period(run: list[tuple[int, int]]) -> float | None:
    """The period the frames of ``run`` agree on (µs per seq), or ``None`` if they do not."""
    rates = [
        ((b_us - a_us) & US_MASK) / ((b_seq - a_seq) & SEQ_MASK)
        for (a_seq, a_us), (b_seq, b_us) in itertools.pairwise(run)
    ]
    mid = sorted(rates)[len(rates) // 2]
    ok = 0 < mid <= MAX_PERIOD_US and all(step_fits(1, round(r), mid) for r in rates)
    return mid if ok else None
