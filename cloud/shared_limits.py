"""Per-key rate limits shared by every API process, kept in PostgreSQL.

``cloud serve --workers N`` and replicas on several hosts must allow a key one
rate, not N. Each bucket is a row of ``rate_buckets`` (tokens, and when they were
counted by the database's clock, so hosts' clocks do not matter). A process
takes tokens from the row a few at a time (a *lease*, a tenth of the burst) and
spends them locally, so the database sees one small transaction per lease, not
per request; a lease unspent after :data:`LEASE_TTL_S` is dropped. A key can get
at most the burst, plus what each process holds leased, at once.

The row work is done on the read pool: it is a tiny transaction that must not
wait behind ingest for a write connection. SQLite serves one process, which keeps
its buckets in memory (:class:`cloud.ratelimit.TokenBuckets`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import text

from cloud.store import Store

LEASE_TTL_S = 1.0

_SEED = text(
    "INSERT INTO rate_buckets (name, tokens, stamp) "
    "VALUES (:name, :burst, extract(epoch from clock_timestamp())) "
    "ON CONFLICT (name) DO NOTHING"
)
_LOCK = text(
    "SELECT tokens, stamp, extract(epoch from clock_timestamp()) "
    "FROM rate_buckets WHERE name = :name FOR UPDATE"
)
_SPEND = text("UPDATE rate_buckets SET tokens = :tokens, stamp = :stamp WHERE name = :name")


def lease(
    tokens: float, stamp: float, now: float, *, rate: float, burst: int, want: int
) -> tuple[int, float]:
    """Tokens granted from a bucket counted ``tokens`` at ``stamp``, and what it keeps, at ``now``."""
    level = min(float(burst), tokens + max(0.0, now - stamp) * rate)
    granted = min(want, math.floor(level))
    return granted, level - granted


class SharedBuckets:
    """Token buckets in the store, spent through local leases; ``rate`` 0 turns limiting off."""

    def __init__(
        self,
        store: Store,
        rate: float,
        burst: int,
        *,
        prefix: str = "key:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self.lease_size = max(1, burst // 10)
        self._clock = clock
        self._local: dict[str, tuple[int, float]] = {}  # name: (tokens, good until)
        self._lock = threading.Lock()

    def _spend_local(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            tokens, until = self._local.get(key, (0, 0.0))
            if tokens >= 1 and until > now:
                self._local[key] = (tokens - 1, until)
                return True
            self._local.pop(key, None)
        return False

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend one token of ``key``: 0.0 when allowed, else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        if self._spend_local(key):
            return 0.0
        name = self.prefix + key
        with self.store.engine.begin() as conn:
            conn.execute(_SEED, {"name": name, "burst": float(self.burst)})
            tokens, stamp, now = conn.execute(_LOCK, {"name": name}).one()
            granted, left = lease(
                float(tokens),
                float(stamp),
                float(now),
                rate=self.rate,
                burst=self.burst,
                want=self.lease_size,
            )
            conn.execute(_SPEND, {"name": name, "tokens": left, "stamp": float(now)})
        if granted < 1:
            return (1.0 - left) / self.rate
        with self._lock:
            self._local[key] = (granted - 1, self._clock() + LEASE_TTL_S)
        return 0.0
