"""Calibration decisions, free of I/O: samples in, live weight and verdicts out.

A slot is calibrated in three steps (:class:`Step`): the tray emptied (tare), a known
weight placed (scale), and optionally a second known weight (linearity check). For
each step a :class:`Measure` is fed blocks of raw counts of every channel; it shows
the live weight, waits until the reading holds still for ``window_s`` and then gives a
:class:`Verdict`: accepted (with the mean counts), or refused with a reason a shop
employee can act on: a dead or saturated channel, a noisy or unsettled reading,
nothing placed, the weight on another slot, a weight that reads as negative, or a
second weight that does not read as what it is. :class:`SlotWizard` strings the
steps together and builds the :class:`~edge.signals.calibration.ChannelCalibration`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.signals.calibration import ChannelCalibration

ADC_MAX = (1 << 23) - 1
ADC_MIN = -(1 << 23)
DEAD_CODE = -1  # DOUT floating high reads 0xFFFFFF


class Step(enum.Enum):
    """What the person has been asked to do."""

    EMPTY = "empty"
    KNOWN = "known"
    CHECK = "check"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a good reading looks like."""

    sps: int = 80
    window_s: float = 1.5  # a settled reading is averaged over this long
    max_wait_s: float = 20.0  # give up waiting for a settled reading after this long
    noise_g: float = 2.0  # sample-to-sample noise (sigma) allowed, grams
    settle_g: float = 1.0  # spread of the window's quarter means allowed, grams
    nominal_counts_per_gram: float = 250.0  # to show grams before the scale is known
    min_counts_per_gram: float = 5.0  # less than this per known gram: nothing placed
    moved_g: float = 20.0  # another channel moving this much means the wrong slot
    linearity_g: float = 1.0  # the second weight may read off by this much...
    linearity_frac: float = 0.005  # ...or this fraction of it, whichever is larger

    @property
    def window(self) -> int:
        """Samples in one averaging window."""
        return max(8, round(self.window_s * self.sps))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one step: ``code`` is ``ok`` or why the reading was refused."""

    code: str
    message: str
    mean_counts: float = math.nan
    counts: tuple[float, ...] = ()
    levels: dict[int, float] = field(default_factory=dict)  # every channel's mean

    @property
    def ok(self) -> bool:
        """True when the reading was accepted."""
        return self.code == "ok"


@dataclass(frozen=True, slots=True)
class Progress:
    """What to show while waiting: the live weight, and the verdict once there is one."""

    grams: float | None
    settled: bool
    verdict: Verdict | None = None
    counts: float | None = None  # the raw level, while there is no zero to weigh against
    approximate: bool = False  # grams from a typical scale: the slot's own is not known yet


@dataclass
class Measure:
    """One step's reading of ``channel``, fed raw blocks of all channels."""

    step: Step
    channel: int
    limits: Limits = field(default_factory=Limits)
    zero_counts: float | None = None  # the tare (KNOWN, CHECK)
    counts_per_gram: float | None = None  # the scale once known (CHECK; re-tare)
    known_grams: float | None = None
    reference: dict[int, float] = field(default_factory=dict)  # other channels at tare
    scales: dict[int, float] = field(default_factory=dict)  # their scales when known
    _rows: list[npt.NDArray[np.float64]] = field(default_factory=list)
    _valid: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    _seen: int = 0

    def _scale(self, channel: int) -> float:
        if channel == self.channel and self.counts_per_gram:
            return self.counts_per_gram
        return self.scales.get(channel) or self.limits.nominal_counts_per_gram

    def feed(self, counts: npt.ArrayLike, valid: npt.ArrayLike | None = None) -> Progress:
        """Add ``counts`` (samples x channels); returns what to show, with a verdict at the end."""
        c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        v = np.ones(c.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        v = np.broadcast_to(np.atleast_2d(v), c.shape)
        if c.shape[0] == 0:
            return Progress(None, False)
        if self.channel >= c.shape[1]:
            return Progress(None, False, self.refuse("dead", "channel missing"))
        self._rows.append(c)
        self._valid.append(v)
        self._seen += c.shape[0]
        keep = self.limits.window * 4
        allc, allv = np.concatenate(self._rows), np.concatenate(self._valid)
        if allc.shape[0] > keep:
            allc, allv = allc[-keep:], allv[-keep:]
        self._rows, self._valid = [allc], [allv]
        return self._judge(allc, allv)

    def refuse(self, code: str, detail: str = "") -> Verdict:
        """A refusal of this step for ``code``, with its message."""
        return Verdict(code, _message(code, self, detail))

    def _judge(self, allc: npt.NDArray[np.float64], allv: npt.NDArray[np.bool_]) -> Progress:
        p = self._progress(allc, allv)
        if p.grams is not None:
            return Progress(p.grams, p.settled, p.verdict, approximate=not self.counts_per_gram)
        good = allc[-8:, self.channel][allv[-8:, self.channel]]
        level = float(np.mean(good)) if good.size else None
        return Progress(None, p.settled, p.verdict, counts=level)

    def _progress(self, allc: npt.NDArray[np.float64], allv: npt.NDArray[np.bool_]) -> Progress:
        lim, ch = self.limits, self.channel
        n = lim.window
        timed_out = self._seen >= lim.max_wait_s * lim.sps
        if allc.shape[0] < n:
            return Progress(self._grams(allc[:, ch], allv[:, ch]), False)
        win, ok = allc[-n:, ch], allv[-n:, ch]
        rails = (win >= ADC_MAX) | (win <= ADC_MIN)
        if rails.mean() >= 0.5:
            return Progress(None, False, self.refuse("saturated"))
        good = ok & ~rails & (win != DEAD_CODE)
        if good.mean() < 0.5 or np.ptp(win[good]) == 0:
            return Progress(None, False, self.refuse("dead"))
        x = win[good]
        scale = self._scale(ch)
        if self.step is Step.KNOWN and self.zero_counts is not None and self.known_grams:
            # the weight on the tray tells the scale well enough to judge noise in grams
            own = abs(float(np.mean(x)) - self.zero_counts) / self.known_grams
            scale = own if own >= lim.min_counts_per_gram else scale
        noise = float(np.std(np.diff(x)) / math.sqrt(2))
        noise_g = noise / scale
        quarters = [q.mean() for q in np.array_split(x, 4) if q.size]
        spread_g = float(np.ptp(quarters) / scale)
        # four means of white noise spread by about 2 sigma of a mean; allow 4.5
        still_g = max(lim.settle_g, 4.5 * noise_g / math.sqrt(max(1, x.size // 4)))
        grams = self._grams(win, ok)
        if noise_g > lim.noise_g or spread_g > still_g:
            if timed_out:
                code = "noisy" if noise_g > lim.noise_g else "unsettled"
                detail = f"{noise_g:.1f} g" if code == "noisy" else f"{spread_g:.1f} g"
                return Progress(grams, False, self.refuse(code, detail))
            return Progress(grams, False)
        mean = float(np.mean(x))
        return Progress(grams, True, self._decide(mean, allc[-n:], allv[-n:], x))

    def _grams(self, counts: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_]) -> float | None:
        good = counts[valid & (counts != DEAD_CODE)]
        if not good.size:
            return None
        zero = (
            self.zero_counts if self.zero_counts is not None else self.reference.get(self.channel)
        )
        if zero is None:
            return None
        return float(
            (np.mean(good[-max(1, self.limits.sps // 4) :]) - zero) / self._scale(self.channel)
        )

    def _moved(
        self, rows: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_]
    ) -> list[tuple[int, float]]:
        """Other channels whose load changed since the tare, biggest first."""
        out = []
        for c, ref in self.reference.items():
            if c == self.channel or c >= rows.shape[1]:
                continue
            good = rows[valid[:, c], c]
            if good.size:
                g = float((np.mean(good) - ref) / self._scale(c))
                if abs(g) >= self.limits.moved_g:
                    out.append((c, g))
        return sorted(out, key=lambda cg: -abs(cg[1]))

    def _decide(
        self,
        mean: float,
        rows: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
        x: npt.NDArray[np.float64],
    ) -> Verdict:
        samples = tuple(float(v) for v in x)
        if self.step is Step.EMPTY:
            return Verdict("ok", "empty tray read", mean, samples, channel_means(rows, valid))
        assert self.zero_counts is not None and self.known_grams is not None
        delta = mean - self.zero_counts
        per_gram = delta / self.known_grams
        moved = self._moved(rows, valid)
        if abs(per_gram) < self.limits.min_counts_per_gram:
            if moved:
                return self.refuse("wrong_slot", str(moved[0][0]))
            return self.refuse("nothing")
        if per_gram < 0:
            return self.refuse("wrong_sign")
        if self.step is Step.KNOWN:
            return Verdict("ok", f"{per_gram:.2f} counts per gram", mean, samples)
        assert self.counts_per_gram is not None
        read = delta / self.counts_per_gram
        tol = max(self.limits.linearity_g, self.limits.linearity_frac * self.known_grams)
        if abs(read - self.known_grams) > tol:
            return self.refuse("nonlinear", f"{read:.1f} g")
        return Verdict("ok", f"reads {read:.1f} g", mean, samples)


def _message(code: str, m: Measure, detail: str) -> str:
    slot = f"this slot (channel {m.channel})"
    known = f"{m.known_grams:g} g" if m.known_grams else "the weight"
    return {
        "dead": f"No reading from {slot}: check that its load cell cable is plugged in.",
        "saturated": f"The reading of {slot} is at the end of its range: take everything "
        "off it, and if that does not help, the load cell is wired wrongly or damaged.",
        "noisy": f"The reading of {slot} jumps about too much ({detail}): make sure nothing "
        "leans on the shelf and no fan or motor shakes it, then try again.",
        "unsettled": f"The weight on {slot} never held still ({detail} of drift): keep hands "
        "off the shelf and wait, then try again.",
        "nothing": f"Nothing seems to have been placed on {slot}: put {known} on it.",
        "wrong_slot": f"The weight seems to be on another slot (channel {detail}) rather than "
        f"{slot}: move {known} to the right slot.",
        "wrong_sign": f"{slot.capitalize()} got lighter when {known} was placed: the load "
        "cell is mounted upside down or wired backwards.",
        "nonlinear": f"{known} reads as {detail} on {slot}: the load cell is not linear, "
        "overloaded or something touches the tray; check and calibrate again.",
    }[code]


class SlotWizard:
    """The steps of one slot: tare, known weight, optional check; builds the calibration."""

    def __init__(self, slot: int, channel: int, limits: Limits | None = None) -> None:
        self.slot, self.channel = slot, channel
        self.limits = limits or Limits()
        self.zero: float | None = None
        self.reference: dict[int, float] = {}
        self.calibration: ChannelCalibration | None = None

    def prompt(self, step: Step, grams: float | None = None) -> str:
        """What the person is asked to do for ``step``."""
        if step is Step.EMPTY:
            return f"Slot {self.slot}: take everything off the tray, then press Enter."
        return f"Slot {self.slot}: place {grams:g} g on the tray, hands off, then press Enter."

    def measure(
        self,
        step: Step,
        known_grams: float | None = None,
        *,
        scales: dict[int, float] | None = None,
    ) -> Measure:
        """A :class:`Measure` for ``step`` of this slot."""
        cal = self.calibration
        return Measure(
            step,
            self.channel,
            self.limits,
            zero_counts=self.zero,
            counts_per_gram=cal.counts_per_gram if cal else None,
            known_grams=known_grams,
            reference=dict(self.reference),
            scales=dict(scales or {}),
        )

    def tared(self, verdict: Verdict) -> None:
        """Keep an accepted empty reading (and the other channels' levels at that time)."""
        self.zero = verdict.mean_counts
        self.reference = {**verdict.levels, self.channel: verdict.mean_counts}

    def scaled(self, verdict: Verdict, known_grams: float) -> ChannelCalibration:
        """Turn an accepted known-weight reading into the channel's calibration."""
        assert self.zero is not None
        self.calibration = ChannelCalibration(
            self.channel, self.zero, (verdict.mean_counts - self.zero) / known_grams, known_grams
        )
        return self.calibration


def channel_means(counts: npt.ArrayLike, valid: npt.ArrayLike | None = None) -> dict[int, float]:
    """Mean counts of every channel with valid samples (the levels at tare time)."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    v = np.ones(c.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    return {i: float(c[v[:, i], i].mean()) for i in range(c.shape[1]) if v[:, i].any()}
