"""Pacing a download under a byte rate: how long to wait after each chunk read.

:class:`Pacer` is a token bucket (values in, a wait out): it holds up to ``burst``
bytes of allowance, refilled at ``rate`` bytes per second; each chunk read spends its
length, and a negative allowance is the wait that brings it back to zero. Reading no
faster than the waits allow keeps the bytes read by any instant ``t`` under
``burst + rate * t``; the sender feels it as a full TCP window, so the link itself is
held to the rate. The caller owns the clock and the sleeping.
"""

from __future__ import annotations


class Pacer:
    """A token bucket over bytes: ``rate`` per second, at most ``burst`` ahead."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be above 0 bytes per second")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self._allowance = self.burst
        self._last: float | None = None

    def wait_for(self, n: int, now: float) -> float:
        """Seconds to wait after reading ``n`` more bytes at ``now``."""
        if self._last is not None:
            self._allowance = min(self.burst, self._allowance + (now - self._last) * self.rate)
        self._last = now
        self._allowance -= n
        return max(0.0, -self._allowance / self.rate)

    def chunk(self, largest: int) -> int:
        """A read size that keeps each wait to about a quarter of a second."""
        return max(1024, min(largest, int(self.rate / 4)))
