"""What every request needs, built once per app: store, settings, cursor codec, limits, key cache."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from cloud.admission import Admission
from cloud.api.db_gate import DbGates, write_slots
from cloud.api.etag import VersionedCache
from cloud.checks import TimeBounds
from cloud.cursor import CursorCodec
from cloud.ingest_procs import IngestPool
from cloud.keys import ApiKey, authenticate, token_sha256
from cloud.labels import SaleWindow
from cloud.ratelimit import TokenBuckets
from cloud.settings import CloudSettings
from cloud.shared_limits import SharedBuckets
from cloud.store import Store
from cloud.store.tables import server_secrets


def server_secret(store: Store, name: str) -> bytes:
    """A random secret kept in the store, made on first use, shared by every replica."""
    with store.writer.begin() as conn:
        ins = (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(
            server_secrets
        )
        conn.execute(
            ins.values(name=name, value=secrets.token_hex(32)).on_conflict_do_nothing(
                index_elements=["name"]
            )
        )
        value = conn.execute(
            select(server_secrets.c.value).where(server_secrets.c.name == name)
        ).scalar_one()
    return bytes.fromhex(value)


@dataclass
class KeyCache:
    """Keys looked up recently, by token hash, trusted for ``ttl`` seconds."""

    ttl: float
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[ApiKey, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, store: Store, token: str) -> ApiKey:
        """The live key of ``token`` (from cache or the store)."""
        digest = token_sha256(token)
        now = self.clock()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        with store.engine.connect() as conn:
            key = authenticate(conn, token)
        if self.ttl > 0:
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[digest] = (key, now + self.ttl)
        return key

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (after revoking it)."""
        with self._lock:
            for digest in [d for d, (k, _) in self._entries.items() if k.key_id == key_id]:
                del self._entries[digest]


@dataclass
class SecurityCounters:
    """What operators should see of attacks on this process (counted since it started)."""

    auth_failures: int = 0  # requests with a missing, malformed, unknown or revoked key
    auth_limited: int = 0  # requests refused because their source failed too often
    claims_limited: int = 0  # claim attempts refused by rate (source or guessed-at group)


@dataclass
class IngestCounts:
    """Events taken over HTTP since this process started: newly stored and already held."""

    stored: int = 0
    duplicates: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stored: int, duplicates: int) -> None:
        """Count one accepted batch."""
        with self._lock:
            self.stored += stored
            self.duplicates += duplicates


@dataclass
class Services:
    """The per-app collaborators handed to routes through dependencies."""

    settings: CloudSettings
    store: Store
    codec: CursorCodec
    buckets: TokenBuckets | SharedBuckets
    keys: KeyCache
    bounds: TimeBounds
    window: SaleWindow
    stock_cache: VersionedCache
    interest_cache: VersionedCache
    auth_failures: TokenBuckets  # per source address
    claim_attempts: TokenBuckets  # per source address
    claim_guesses: TokenBuckets  # unknown codes, per first character of the code
    admission: Admission
    gates: DbGates  # database slots of the other requests (cloud.api.db_gate)
    counters: SecurityCounters = field(default_factory=SecurityCounters)
    ingest_counts: IngestCounts = field(default_factory=IngestCounts)
    ingest_pool: IngestPool | None = None  # started and stopped with the app
    _ingest_threads: anyio.CapacityLimiter | None = None

    @property
    def read_gate(self) -> Admission:
        """Slots of requests that read: one per read connection."""
        return self.gates.read

    @property
    def write_gate(self) -> Admission:
        """Slots of writes outside ingest: the write connections ingest leaves free."""
        return self.gates.write

    def ingest_threads(self) -> anyio.CapacityLimiter:
        """The threads ingest runs on, apart from the pool that serves reads (made in the loop)."""
        if self._ingest_threads is None:
            self._ingest_threads = anyio.CapacityLimiter(self.admission.limit)
        return self._ingest_threads

    @classmethod
    def build(cls, settings: CloudSettings, store: Store) -> Services:
        """Everything from settings and an opened store."""

        secret = (
            settings.cursor_secret.get_secret_value().encode()
            if settings.cursor_secret is not None
            else server_secret(store, "cursor")
        )
        gates = DbGates.sized(
            store.read_capacity or settings.db_pool_size,
            write_slots(
                store.write_capacity or settings.db_write_pool_size,
                settings.ingest_slots,
                settings.ingest_processes,
            ),
            settings.read_queue,
            settings.read_max_wait_s,
        )
        return cls(
            settings=settings,
            gates=gates,
            store=store,
            codec=CursorCodec(secret),
            buckets=(
                SharedBuckets(store, settings.rate_per_s, settings.rate_burst)
                if store.dialect == "postgresql"
                else TokenBuckets(settings.rate_per_s, settings.rate_burst)
            ),
            keys=KeyCache(settings.key_cache_s),
            bounds=TimeBounds.of(settings.max_future_s, settings.max_past_days),
            window=SaleWindow.of(settings),
            stock_cache=VersionedCache(),
            interest_cache=VersionedCache(),
            auth_failures=TokenBuckets(settings.auth_fail_per_s, settings.auth_fail_burst),
            claim_attempts=TokenBuckets(settings.claim_per_s, settings.claim_burst),
            claim_guesses=TokenBuckets(settings.claim_fail_per_s, settings.claim_fail_burst),
            admission=Admission(
                settings.ingest_slots, settings.ingest_queue, settings.ingest_max_wait_s
            ),
            ingest_pool=(
                IngestPool(settings, settings.ingest_processes, nice=settings.ingest_nice)
                if settings.ingest_processes
                else None
            ),
        )
