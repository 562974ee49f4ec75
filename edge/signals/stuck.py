"""A load cell whose ADC repeats one code is stuck: its samples stop counting.

A live cell never gives the same 24-bit code many times running: its noise alone
moves the last bits from one sample to the next. A frozen converter does, and what
it repeats is wherever the weight was when it froze, perhaps halfway through a
shopper's lift. :class:`StuckFilter` marks every sample after ``run`` identical codes
in a row as invalid, so nothing settles on a frozen value; when the cell answers
again, the weight path sees its true load and reports what moved meanwhile as one
change from the last quiet level. The first ``run`` samples of a frozen stretch stay
valid (they cannot be told from a steady weight yet), so ``run`` is kept well below
the settle time. A channel that is genuinely constant (a noise-free test signal)
is marked too, which is harmless: nothing is lost while nothing moves.

Pure, state carried across blocks; :attr:`episodes` counts stretches per lane.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

B = npt.NDArray[np.bool_]


class StuckFilter:
    """Raw codes in, the ``valid`` mask with stuck samples cleared out."""

    def __init__(self, lanes: int, run: int) -> None:
        if run < 2:
            raise ValueError("a stuck run needs at least 2 samples")
        self.run = run
        self._last: npt.NDArray[np.int64] | None = None
        self._len = np.zeros(lanes, dtype=np.int64)  # identical codes so far, per lane
        self.stuck = np.zeros(lanes, dtype=bool)
        self.episodes = np.zeros(lanes, dtype=np.int64)

    def push(self, counts: npt.NDArray[np.integer], valid: B) -> B:
        """``valid`` of a block ``(n, lanes)`` with samples past a stuck run cleared."""
        n = counts.shape[0]
        if n == 0:
            return valid
        c = np.asarray(counts, dtype=np.int64)
        prev = np.empty_like(c)
        prev[1:] = c[:-1]
        if self._last is None:
            prev[0] = c[0] + 1  # the first sample starts a run
        else:
            prev[0] = self._last
        same = c == prev
        if not same.any():  # a live cell: every code moved (the usual case, and cheap)
            self._last, self.stuck[:] = c[-1].copy(), False
            self._len[:] = 1
            return valid
        idx = np.arange(n, dtype=np.int64)[:, None]
        reset = np.maximum.accumulate(np.where(same, -1, idx), axis=0)
        length = np.where(reset < 0, self._len[None, :] + idx + 1, idx - reset + 1)
        stuck = length > self.run
        began = stuck & ~np.vstack((self.stuck[None, :], stuck[:-1]))
        self.episodes += began.sum(axis=0)
        self._last, self._len, self.stuck = c[-1].copy(), length[-1].copy(), stuck[-1].copy()
        return valid & ~stuck
