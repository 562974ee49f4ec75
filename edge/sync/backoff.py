"""Retry waits of the sync loop, as pure objects: exponential backoff with full jitter,
the cloud's ``Retry-After`` honoured, and whether a probe may end the wait early.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRY_AFTER_JITTER = 0.2  # a wait the cloud asked for is stretched by up to this share


@dataclass(frozen=True)
class RetryWait:
    """How long to wait before the next try, and whether a successful probe ends it early.

    A wait the cloud asked for (``Retry-After``) is kept in full; a backoff after the
    cloud could not be reached ends as soon as a cheap probe says it answers again.
    """

    delay_s: float
    probe: bool


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

    def apply(self, *, initial_s: float, max_s: float) -> None:
        """Take new bounds (a config change); the failure count is kept."""
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.max_s, self.initial_s * (2.0 ** min(self.failures, 62)))

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before retrying."""
        ceiling = self.ceiling()
        self.failures += 1
        return self._rng.uniform(0.0, ceiling)

    def after_failure(self, *, retry_after: float | None, probe: bool) -> RetryWait:
        """Record a failure and say how to wait: the cloud's ``retry_after`` (seconds, with a
        little jitter) when it named one, else the backoff delay, ended early by a probe
        when ``probe`` (the cloud was unreachable, not refusing)."""
        delay = self.next_delay()
        if retry_after is not None:
            stretch = self._rng.uniform(1.0, 1.0 + RETRY_AFTER_JITTER)
            return RetryWait(retry_after * stretch, probe=False)
        return RetryWait(delay, probe=probe)

    def probe_gap(self, probe_s: float) -> float:
        """The next interval between probes: ``probe_s`` jittered by ±50 %."""
        return self._rng.uniform(0.5 * probe_s, 1.5 * probe_s)

    def reset(self) -> None:
        """A success: the next failure starts from ``initial_s`` again."""
        self.failures = 0
