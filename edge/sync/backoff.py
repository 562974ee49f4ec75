"""Exponential backoff with full jitter, as a pure object the sync loop asks for delays."""

from __future__ import annotations

import random


class Backoff:
    """Delay before the next retry: uniform in ``[0, min(max_s, initial_s * 2**failures)]``.

    Full jitter spreads a fleet that lost the network at once so it does not come back
    in lockstep. :meth:`reset` after a success.
    """

    def __init__(self, *, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.max_s, self.initial_s * (2.0 ** min(self.failures, 62)))

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before retrying."""
        ceiling = self.ceiling()
        self.failures += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        """A success: the next failure starts from ``initial_s`` again."""
        self.failures = 0
