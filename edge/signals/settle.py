"""Settle detection and zero tracking on filtered weight, many lanes at once.

A lane (one slot's filtered weight) is *quiet* while every sample stays within
``stable_band_g`` of its baseline; meanwhile the baseline slowly follows the signal
(time constant ``zero_track_tau_s``) so creep and temperature drift never add up to
a phantom change. A sample outside the band starts a *change*; the change has
*settled* once ``settle_s`` of valid samples spread no more than ``settle_band_g``.
The settled level minus the old baseline is the step, reported as :class:`Settled`
with the change's farthest excursion from the old baseline (``peak``: a unit lifted and
set back steps by nothing but peaks by its weight); the level becomes the new baseline.
The very first settle of a lane only sets its baseline.

Quiet lanes are handled for a whole block with array operations; only lanes that are
in a change, or leave the band in this block, step through samples one by one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Settled:
    """A settled step on one lane: ``grams`` from the old baseline to ``level``.

    ``peak`` is the largest distance from the old baseline while the change went on.
    """

    lane: int
    grams: float
    level: float
    t_start: float
    t_settled: float
    spread: float
    forced: bool = False
    peak: float = 0.0


class SettleTracker:
    """Pure state machine: filtered samples of all lanes in, settled steps out."""

    def __init__(
        self,
        lanes: int,
        *,
        rate_hz: float,
        stable_band_g: float,
        settle_band_g: float,
        settle_s: float,
        zero_track_tau_s: float,
        max_change_s: float,
    ) -> None:
        self.lanes = lanes
        self.dt = 1.0 / rate_hz
        self.band = stable_band_g
        self.settle_band = settle_band_g
        self.window = max(2, round(settle_s * rate_hz))
        self.tau = zero_track_tau_s
        self.max_change_s = max_change_s
        self.alpha1 = 1.0 - math.exp(-self.dt / self.tau)
        self.base: F64 = np.full(lanes, np.nan)
        self.active = np.ones(lanes, dtype=bool)  # nothing is known until a lane settles
        self.t_start: F64 = np.full(lanes, np.nan)
        self.last_quiet: F64 = np.full(lanes, np.nan)
        self.peak: F64 = np.zeros(lanes)
        self._win: list[deque[float]] = [deque(maxlen=self.window) for _ in range(lanes)]

    def push(self, t: F64, x: F64, valid: npt.NDArray[np.bool_]) -> list[Settled]:
        """Feed decimated samples ``x`` (shape ``(n, lanes)``) at times ``t``."""
        n = t.shape[0]
        if n == 0:
            return []
        exceed = (np.abs(x - self.base) > self.band) & valid
        busy = self.active | exceed.any(axis=0)
        quiet = ~busy
        if quiet.any():
            self._track_zero(t, x[:, quiet], valid[:, quiet], quiet)
        out: list[Settled] = []
        for lane in np.flatnonzero(busy).tolist():
            self._step_lane(lane, t, x[:, lane], valid[:, lane], out)
        return out

    def _track_zero(
        self, t: F64, xq: F64, vq: npt.NDArray[np.bool_], quiet: npt.NDArray[np.bool_]
    ) -> None:
        """Exponential smoothing of quiet lanes' baselines, sample by sample, in one go."""
        keep = 1.0 - self.alpha1
        after = vq[::-1].cumsum(axis=0)[::-1] - vq  # valid samples after each one
        w = np.where(vq, self.alpha1 * keep**after, 0.0)
        nv = vq.sum(axis=0)
        bq = self.base[quiet]
        self.base[quiet] = keep**nv * bq + (w * np.where(vq, xq, 0.0)).sum(axis=0)
        last = np.where(vq, t[:, None], -np.inf).max(axis=0)
        self.last_quiet[quiet] = np.where(nv > 0, last, self.last_quiet[quiet])

    def _step_lane(
        self,
        lane: int,
        t: F64,
        xs: F64,
        vs: npt.NDArray[np.bool_],
        out: list[Settled],
    ) -> None:
        base = float(self.base[lane])
        active = bool(self.active[lane])
        win = self._win[lane]
        peak = float(self.peak[lane])
        band, sband, a1 = self.band, self.settle_band, self.alpha1
        tl, xl, vl = t.tolist(), xs.tolist(), vs.tolist()
        for i in range(len(tl)):
            if not vl[i]:
                continue
            xi, ti = xl[i], tl[i]
            dev = abs(xi - base)
            if not active:
                if dev > band:
                    self._begin(lane)
                    active, peak = True, 0.0
                else:
                    base += a1 * (xi - base)
                    self.last_quiet[lane] = ti
                    continue
            if dev > peak:
                peak = dev
            win.append(xi)
            forced = ti - float(self.t_start[lane]) > self.max_change_s
            if len(win) == self.window or (forced and len(win) >= 2):
                lo, hi = min(win), max(win)
                if hi - lo <= sband or forced:
                    level = sum(win) / len(win)
                    if not math.isnan(base):
                        out.append(
                            Settled(
                                lane,
                                level - base,
                                level,
                                float(self.t_start[lane]),
                                ti,
                                hi - lo,
                                forced,
                                peak,
                            )
                        )
                    base = level
                    active = False
                    self.active[lane] = False
                    self.last_quiet[lane] = ti
                    win.clear()
        self.base[lane] = base
        self.peak[lane] = peak

    def _begin(self, lane: int) -> None:
        """A change starts; it is dated from the lane's last quiet sample."""
        self.active[lane] = True
        self.t_start[lane] = self.last_quiet[lane]
        self._win[lane].clear()
