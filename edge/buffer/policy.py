"""Outbox bookkeeping as plain classes: what to evict, what to hold, which acks to believe.

No I/O here. :class:`edge.buffer.store.Buffer` measures the database and asks
:class:`RetentionPolicy` what to delete; it parks events in a :class:`HoldQueue`
while the disk is full; the sync worker records what it sent in an
:class:`AckLedger` and lets only acknowledgements of those seqs through.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge.buffer.config import BufferConfig, OnFull

ROW_OVERHEAD_BYTES = 64  # row header, integer key, index entries: a rough, safe estimate


@dataclass(frozen=True, slots=True)
class Usage:
    """How full the outbox is: bytes in used pages and rows by state."""

    used_bytes: int
    synced_rows: int
    unsynced_rows: int

    @property
    def rows(self) -> int:
        """All rows."""
        return self.synced_rows + self.unsynced_rows


@dataclass(frozen=True, slots=True)
class RoomPlan:
    """What to do so that new rows fit under the cap.

    Delete ``evict_synced`` synced rows (oldest first), then ``evict_unsynced`` unsent
    rows (oldest first, only under ``evict_unsynced_oldest``); ``admit`` False means the
    new rows must be dropped.
    """

    evict_synced: int
    evict_unsynced: int
    admit: bool

    @property
    def binds(self) -> bool:
        """True when the cap forced losing unsent events (dropped or evicted)."""
        return self.evict_unsynced > 0 or not self.admit


class RetentionPolicy:
    """Decides expiry of synced rows and room under the hard cap.

    Synced rows go first, oldest first. Unsynced rows are never evicted unless the
    policy says ``evict_unsynced_oldest``; under ``drop_new`` the new rows are refused.
    """

    def __init__(self, *, max_bytes: int, keep_synced_s: float, on_full: OnFull) -> None:
        self.apply(max_bytes=max_bytes, keep_synced_s=keep_synced_s, on_full=on_full)

    @classmethod
    def of(cls, config: BufferConfig) -> RetentionPolicy:
        """The policy a ``[buffer]`` section asks for."""
        return cls(**cls._bounds(config))

    @staticmethod
    def _bounds(config: BufferConfig) -> dict[str, Any]:
        return {
            "max_bytes": int(config.max_mb * 1024 * 1024),
            "keep_synced_s": config.keep_synced_days * 86400.0,
            "on_full": config.on_full,
        }

    def apply(self, *, max_bytes: int, keep_synced_s: float, on_full: OnFull) -> None:
        """Take new bounds."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.keep_synced_s = keep_synced_s
        self.on_full = on_full

    def apply_config(self, config: BufferConfig) -> None:
        """Take the bounds of a new ``[buffer]`` section."""
        self.apply(**self._bounds(config))

    def expiry_cutoff(self, now: float) -> float:
        """Synced rows synced before this wall time are due for deletion."""
        return now - self.keep_synced_s

    @staticmethod
    def row_bytes(body_len: int) -> int:
        """Estimated bytes a row with a body of ``body_len`` characters takes."""
        return body_len + ROW_OVERHEAD_BYTES

    def plan_room(self, usage: Usage, incoming_bytes: int, incoming_rows: int = 1) -> RoomPlan:
        """How many rows to evict (and whether to admit) so ``incoming_bytes`` fit."""
        over = usage.used_bytes + incoming_bytes - self.max_bytes
        if over <= 0:
            return RoomPlan(0, 0, True)
        if usage.rows > 0:
            per_row = max(1, usage.used_bytes // usage.rows)
        else:
            per_row = max(1, incoming_bytes // max(1, incoming_rows))
        need = math.ceil(over / per_row)
        synced = min(need, usage.synced_rows)
        rest = need - synced
        if rest == 0:
            return RoomPlan(synced, 0, True)
        if self.on_full == "evict_unsynced_oldest" and usage.unsynced_rows > 0:
            unsynced = min(rest, usage.unsynced_rows)
            return RoomPlan(synced, unsynced, unsynced == rest)
        return RoomPlan(synced, 0, False)


T = TypeVar("T")


class HoldQueue(Generic[T]):
    """A bounded in-memory queue for events that cannot be written yet (disk full).

    Oldest first; when full, new items are refused and counted in ``dropped``.
    """

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self.maxlen = maxlen
        self._items: deque[T] = deque()
        self.dropped = 0
        self.held_total = 0

    def offer(self, items: Iterable[T]) -> list[T]:
        """Hold what fits; returns the items that were dropped."""
        refused: list[T] = []
        for item in items:
            if len(self._items) >= self.maxlen:
                refused.append(item)
            else:
                self._items.append(item)
                self.held_total += 1
        self.dropped += len(refused)
        return refused

    def peek_all(self) -> list[T]:
        """Everything held, oldest first (left in place until :meth:`release`)."""
        return list(self._items)

    def release(self, n: int) -> None:
        """Forget the ``n`` oldest items (they were written)."""
        for _ in range(min(n, len(self._items))):
            self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class AckResult:
    """Which seqs of an acknowledgement were believed and which were ignored."""

    accepted: list[int]
    ignored: list[int]


class AckLedger:
    """Seqs sent and not yet acknowledged; only acknowledgements of those are believed.

    An ack naming a seq this process never sent (or already saw acknowledged) is
    ignored and reported, so a confused or hostile peer cannot mark unsent rows as
    synced. Bounded: past ``max_entries`` the oldest entries are forgotten, and the
    worst that does is a resend, which the cloud deduplicates.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._sent: OrderedDict[int, float] = OrderedDict()

    def sent(self, seqs: Iterable[int], now: float) -> None:
        """Record that ``seqs`` went out at ``now`` (re-sending refreshes the time)."""
        for s in seqs:
            self._sent.pop(s, None)
            self._sent[s] = now
        while len(self._sent) > self.max_entries:
            self._sent.popitem(last=False)

    def accept(self, seqs: Iterable[int]) -> AckResult:
        """Take an acknowledgement of ``seqs``: split them into believed and ignored."""
        accepted: list[int] = []
        ignored: list[int] = []
        for s in seqs:
            if self._sent.pop(s, None) is not None:
                accepted.append(s)
            else:
                ignored.append(s)
        return AckResult(accepted, ignored)

    def accept_through(self, highest_contiguous: int) -> list[int]:
        """Every seq sent and ``<= highest_contiguous`` is acknowledged."""
        done = [s for s in self._sent if s <= highest_contiguous]
        for s in done:
            del self._sent[s]
        return done

    def waiting(self, seqs: Iterable[int]) -> list[int]:
        """Those of ``seqs`` still waiting for an acknowledgement."""
        return [s for s in seqs if s in self._sent]

    def clear(self) -> None:
        """Forget everything (after a reconnect every unacked row is resent anyway)."""
        self._sent.clear()

    def __len__(self) -> int:
        return len(self._sent)

    def __contains__(self, seq: object) -> bool:
        return seq in self._sent


@dataclass(frozen=True, slots=True)
class PendingRow:
    """An unsent outbox row: its seq, when it was written (wall time) and its JSON."""

    seq: int
    created: float
    body: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows to send together, oldest first; ``historical`` marks a backlog batch."""

    rows: list[PendingRow]
    historical: bool


class BatchPlanner:
    """Splits pending rows into live and backlog and alternates between them.

    A row older than ``live_age_s`` when it is sent belongs to the backlog and is
    flagged historical. While both exist, batches alternate live, backlog, live, …
    so fresh events keep flowing during a catch-up; each batch is oldest first.
    """

    def __init__(self, *, live_age_s: float) -> None:
        self.live_age_s = live_age_s
        self._backlog_turn = False

    def apply(self, *, live_age_s: float) -> None:
        """Take a new live age (a config change); the turn goes on where it was."""
        self.live_age_s = live_age_s

    def cutoff(self, now: float) -> float:
        """Rows created before this wall time are backlog."""
        return now - self.live_age_s

    def choose(self, live: list[PendingRow], backlog: list[PendingRow]) -> Batch | None:
        """The next batch from the two candidates (each oldest first), or None."""
        if not live and not backlog:
            return None
        if not backlog:
            take_backlog = False
        elif not live:
            take_backlog = True
        else:
            take_backlog = self._backlog_turn
            self._backlog_turn = not self._backlog_turn
        if take_backlog:
            return Batch(list(backlog), True)
        return Batch(list(live), False)
