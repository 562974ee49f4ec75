"""Raw counts to filtered grams at the decision rate, a block at a time.

:class:`Decimator` converts counts to grams with each channel's calibration, then
reduces every group of ``factor`` consecutive samples to one value (median by
default, which throws away single-sample glitches). Invalid samples are left out
of their group; a group with no valid sample is reported invalid. Samples that do
not fill a whole group wait for the next block, so any block size gives the same
output.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


class Decimator:
    """Counts in, filtered grams out at ``sps / factor``; state carries across blocks."""

    def __init__(
        self,
        offset_counts: npt.ArrayLike,
        counts_per_gram: npt.ArrayLike,
        *,
        factor: int,
        method: str = "median",
    ) -> None:
        if factor < 1:
            raise ValueError("factor must be >= 1")
        if method not in ("median", "mean"):
            raise ValueError(f"unknown filter {method!r}")
        self.offset = np.asarray(offset_counts, dtype=np.float64)
        self.inv_scale = 1.0 / np.asarray(counts_per_gram, dtype=np.float64)
        self.factor = factor
        self.method = method
        ch = self.offset.shape[0]
        self._t: F64 = np.empty(0)
        self._g: F64 = np.empty((0, ch))
        self._v: B = np.empty((0, ch), dtype=bool)

    def push(self, t: F64, counts: npt.NDArray[np.integer], valid: B) -> tuple[F64, F64, B]:
        """Feed raw samples of the calibrated channels; returns ``(t, grams, valid)`` decimated.

        ``t`` of an output is the time of the last raw sample of its group.
        """
        g = (counts - self.offset) * self.inv_scale
        if self._t.size:
            t = np.concatenate((self._t, t))
            g = np.concatenate((self._g, g))
            valid = np.concatenate((self._v, valid))
        d = self.factor
        m = t.shape[0] // d
        cut = m * d
        self._t, self._g, self._v = t[cut:], g[cut:], valid[cut:]
        if m == 0:
            ch = g.shape[1]
            return np.empty(0), np.empty((0, ch)), np.empty((0, ch), dtype=bool)
        tg = t[d - 1 : cut : d]
        gg = g[:cut].reshape(m, d, -1)
        vv = valid[:cut].reshape(m, d, -1)
        if d == 1:
            return tg, gg[:, 0, :], vv[:, 0, :]
        if vv.all():
            red = np.median(gg, axis=1) if self.method == "median" else gg.mean(axis=1)
            return tg, red, np.ones(red.shape, dtype=bool)
        masked = np.where(vv, gg, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-invalid groups
            red = (
                np.nanmedian(masked, axis=1)
                if self.method == "median"
                else np.nanmean(masked, axis=1)
            )
        ok: B = np.asarray(vv.any(axis=1), dtype=bool)
        out: F64 = np.where(ok, red, 0.0)
        return tg, out, ok
