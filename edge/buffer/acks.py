"""Reading and acknowledging outbox rows, with the one error handling of every later write.

:class:`OutboxRows` is the half of :class:`~edge.buffer.store.Buffer` the sync side
uses: :meth:`~OutboxRows.pending` rows oldest first, :meth:`~OutboxRows.ack` and
:meth:`~OutboxRows.ack_through` on the cloud's acknowledgements,
:meth:`~OutboxRows.quarantine` for events refused for good (listed by
:meth:`~OutboxRows.rejected`, put back by :meth:`~OutboxRows.requeue_rejected`) and
:meth:`~OutboxRows.maintain` for retention. Every write goes through
:meth:`~OutboxRows._try_write`: busy, disk full and corruption handled alike.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence

from edge.buffer import rows
from edge.buffer.db import Db
from edge.buffer.policy import HoldQueue, PendingRow, RetentionPolicy
from edge.buffer.recovery import is_corrupt, is_disk_full
from edge.buffer.rows import RejectedRow
from edge.health import DISK_FULL, Health
from models.wire import ShelfEvent

log = logging.getLogger("edge.buffer.store")

EVENTS_REJECTED = "events_rejected"  # alarm while the quarantine holds rows


class OutboxRows:
    """Reads and acknowledgements of the outbox (mixed into :class:`Buffer`)."""

    _lock: threading.RLock
    _db: Db
    _clock: Callable[[], float]
    _hold: HoldQueue[ShelfEvent]
    _n_unsynced: int
    _n_synced: int
    _n_rejected: int
    health: Health
    policy: RetentionPolicy

    def _replace_corrupt(self, why: str) -> Db:
        raise NotImplementedError

    def _flush_held(self, *, force: bool = False) -> bool:
        raise NotImplementedError

    # -- reading, acknowledging -----------------------------------------------

    def _try_write(self, what: str, fn: Callable[[], int], *, counter: str = "write_failed") -> int:
        """Run the write ``fn`` under the lock; the one error handling of every later write.

        A failure is logged and counted and leaves the rows as they were (an ack not
        recorded means a resend the cloud deduplicates); a full disk raises its alarm;
        a corrupt file is moved aside and a new one started. Returns ``fn``'s count, or 0.
        """
        with self._lock:
            try:
                return fn()
            except sqlite3.Error as err:
                log.warning("could not %s: %s", what, err)
                self.health.count(counter)
                if is_disk_full(err):
                    self.health.alarm(DISK_FULL, str(err))
                elif is_corrupt(err):
                    self._db = self._replace_corrupt(str(err))
                return 0

    def pending(
        self, limit: int, *, before: float | None = None, since: float | None = None
    ) -> list[PendingRow]:
        """Unsent rows, oldest first.

        ``before``: only rows created before that wall time (the backlog).
        ``since``: only rows created at or after it (live).
        """
        with self._lock:
            return rows.pending(self._db, limit, before=before, since=since)

    def ack(self, seqs: Sequence[int]) -> int:
        """Mark ``seqs`` synced; returns how many unsent rows that marked.

        Seqs unknown to the outbox or already synced are ignored and counted
        (``acks_ignored``). A write failure leaves the rows unsent (they are resent and
        the cloud deduplicates).
        """
        if not seqs:
            return 0
        now = self._clock()

        def mark() -> int:
            with self._db.atomic():
                done = rows.mark_synced(self._db, seqs, now)
            self._n_unsynced -= done
            self._n_synced += done
            return done

        done = self._try_write(f"record {len(seqs)} acks", mark, counter="ack_write_failed")
        self.health.count("events_synced", done)
        self.health.count("acks_ignored", len(set(seqs)) - done)
        return done

    def ack_through(self, highest_contiguous: int) -> int:
        """Mark every unsent row with ``seq <= highest_contiguous`` synced; returns how many.

        The cloud's highest contiguous seq says it holds all of ``1..N``, so resends of
        rows it already had leave the outbox too, whatever order acks arrive in.
        """
        if highest_contiguous < 1:
            return 0
        now = self._clock()

        def mark() -> int:
            done = rows.mark_synced_through(self._db, highest_contiguous, now)
            self._n_unsynced -= done
            self._n_synced += done
            return done

        done = self._try_write(
            f"record acks through {highest_contiguous}", mark, counter="ack_write_failed"
        )
        self.health.count("events_synced", done)
        return done

    def quarantine(self, seqs: Sequence[int], reason: str) -> int:
        """Move unsent rows the cloud refused for good into the quarantine; returns how many.

        They are never resent nor deleted; each is counted (``events_rejected``) and the
        alarm of the same name stays raised while any is kept.
        """
        if not seqs:
            return 0
        now = self._clock()

        def move() -> int:
            with self._db.atomic():
                moved = rows.quarantine(self._db, seqs, reason, now)
            self._n_unsynced -= moved
            self._n_rejected += moved
            return moved

        moved = self._try_write(f"quarantine {len(seqs)} rows", move)
        total = self._n_rejected
        if moved:
            log.error("%d events refused by the cloud, quarantined: %s", moved, reason)
            self.health.count(EVENTS_REJECTED, moved)
            self.health.alarm(EVENTS_REJECTED, f"{total} events refused by the cloud: {reason}")
        return moved

    def last_body(self) -> str | None:
        """The JSON of the newest event committed (sent or not): where a restart resumes."""
        with self._lock:
            return rows.last_body(self._db)

    def rejected(self, limit: int = 1000) -> list[RejectedRow]:
        """Quarantined rows, oldest first."""
        with self._lock:
            return rows.rejected(self._db, limit)

    def requeue_rejected(self, seqs: Sequence[int] | None = None) -> int:
        """Put quarantined rows (all, or ``seqs``) back in the outbox to be sent again.

        Returns how many; a write failure is handled like every other (the rows stay
        quarantined, 0 is returned).
        """
        if seqs is not None and not seqs:
            return 0

        def put_back() -> int:
            with self._db.atomic():
                back = rows.requeue(self._db, seqs)
            self._n_rejected -= back
            self._n_unsynced += back
            return back

        back = self._try_write("put quarantined rows back", put_back)
        if not self._n_rejected:
            self.health.clear(EVENTS_REJECTED)
        return back

    def maintain(self) -> int:
        """Delete synced rows past retention; returns how many."""
        cutoff = self.policy.expiry_cutoff(self._clock())

        def expire() -> int:
            gone = rows.expire_synced(self._db, cutoff)
            self._n_synced -= gone
            if len(self._hold):
                self._flush_held()
            return gone

        return self._try_write("run the retention pass", expire)
