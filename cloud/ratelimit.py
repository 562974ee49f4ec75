"""Per-key token buckets: a sustained rate and a burst, refused with a retry time.

Pure bookkeeping over a clock passed in, so tests drive it without sleeping.
On SQLite (one process) a key's buckets live here; on PostgreSQL every API
process shares them through :mod:`cloud.shared_limits`. Failed-authentication
buckets per source address stay per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_BUCKETS = 100_000  # past this many, buckets that have refilled are forgotten


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """One token bucket per key id; ``rate`` 0 turns limiting off."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _level(self, b: _Bucket, now: float) -> float:
        """Tokens in ``b`` at ``now`` (refilled at ``rate``, capped at ``burst``)."""
        return min(float(self.burst), b.tokens + (now - b.stamp) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a whole token (0.0: it has one now); spends nothing."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            b = self._buckets.get(key)
            tokens = float(self.burst) if b is None else self._level(b, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``key``: 0.0 when allowed, else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= MAX_BUCKETS:  # full buckets hold no state: forget them
                    for k in [
                        k for k, v in self._buckets.items() if self._level(v, now) >= self.burst
                    ]:
                        del self._buckets[k]
                b = self._buckets[key] = _Bucket(float(self.burst), now)
            b.tokens = self._level(b, now)
            b.stamp = now
            if b.tokens >= cost:
                b.tokens -= cost
                return 0.0
            return (cost - b.tokens) / self.rate
