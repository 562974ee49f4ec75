"""The durable outbox: ShelfEvents committed to SQLite before anything sends them.

Workflow: :meth:`Buffer.append_many` validates event fields, numbers them with the
next per-device seqs and commits rows and the new high-water seq in one transaction
(making room first as :class:`~edge.buffer.policy.RetentionPolicy` decides). The
sync worker reads :meth:`Buffer.pending` (oldest first) and calls :meth:`Buffer.ack`
with the seqs the cloud acknowledged; :meth:`Buffer.maintain` deletes synced rows
past their retention. A corrupt file is moved aside (its unsent rows salvaged when
they can be read) and a new one started above the seq mark in ``<db>.seq``; a full
disk parks events in a bounded in-memory queue until writing works again.
Rows the cloud refuses for good are moved by :meth:`Buffer.quarantine` into the
``quarantine`` table with the reason: counted, alarmed (``events_rejected``), never
resent and never deleted; :meth:`Buffer.requeue_rejected` puts them back.

Durability: WAL with ``synchronous=FULL`` by default, so a committed event survives
``kill -9`` and power loss (NORMAL would survive only a process crash). Events are
rare next to the cost of one WAL fsync, and several events of one decision share
one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic import ValidationError

from edge.buffer import rows
from edge.buffer.config import BufferConfig
from edge.buffer.policy import HoldQueue, PendingRow, RetentionPolicy, RoomPlan, Usage
from edge.buffer.recovery import is_corrupt, is_disk_full, move_aside, salvage_rows
from edge.buffer.rows import RejectedRow
from edge.buffer.schema import migrate, pragmas
from edge.buffer.seqmark import read_mark, write_mark
from edge.errors import EdgeError
from edge.health import BUFFER_FULL, DB_CORRUPTED, DISK_FULL, Health
from models.wire import ShelfEvent

log = logging.getLogger(__name__)

EVENTS_REJECTED = "events_rejected"  # alarm while the quarantine holds rows


class OutboxError(EdgeError, RuntimeError):
    """The outbox cannot be opened or written for a reason it cannot handle itself."""


class EventInvalid(EdgeError, ValueError):
    """Event fields that do not make a valid ShelfEvent."""


@dataclass(frozen=True, slots=True)
class BufferStats:
    """A look at the outbox for health and status."""

    depth: int
    oldest_unsynced: float | None
    synced_rows: int
    used_bytes: int
    seq: int
    held: int
    rejected: int = 0


def _connect(path: Path, synchronous: str) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5)
    db = sqlite_utils.Database(conn, execute_plugins=False)
    for p in pragmas(synchronous):
        db.execute(p)
    return db


class Buffer:
    """The SQLite outbox of one device. Thread-safe: one connection behind a lock."""

    def __init__(
        self,
        path: Path | str,
        *,
        device_id: str,
        config: BufferConfig | None = None,
        health: Health | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.device_id = device_id
        self.config = config or BufferConfig()
        self.health = health or Health()
        self._clock = clock
        self._lock = threading.RLock()
        self.policy = RetentionPolicy.of(self.config)
        self._hold: HoldQueue[ShelfEvent] = HoldQueue(self.config.hold_max_events)
        self._next_retry = 0.0
        self.mark_path = self.path.with_name(self.path.name + ".seq")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open()

    def apply(self, config: BufferConfig) -> None:
        """Take a new ``[buffer]`` section (desired state): retention bounds and retries.

        The file, its ``synchronous`` level and the hold queue's size are fixed at open.
        """
        self.config = config
        self.policy.apply_config(config)

    # -- opening, corruption ------------------------------------------------

    def _open(self) -> sqlite_utils.Database:
        fresh = not self.path.exists()
        try:
            db = _connect(self.path, self.config.synchronous)
            check = db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check[:3]}")
            migrate(db)
            seq = self._read_seq(db)
        except sqlite3.DatabaseError as err:
            if not is_corrupt(err):
                raise OutboxError(f"cannot open buffer {self.path}: {err}") from err
            with contextlib.suppress(Exception):
                db.conn.close()
            return self._replace_corrupt(str(err))
        self._reserved = read_mark(self.mark_path)
        if fresh and self._reserved > seq:
            seq = self._reserved  # the database was removed: never reuse a seq
        self._seq = seq
        self._page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        self._recount(db)
        return db

    @staticmethod
    def _read_seq(db: sqlite_utils.Database) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        meta = int(row[0]) if row else 0
        top = db.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
        return max(meta, int(top))

    def _replace_corrupt(self, why: str) -> sqlite_utils.Database:
        """Move the corrupt file (and its WAL) aside, salvage what reads, start anew."""
        aside = move_aside(self.path, int(self._clock()))
        log.error(
            "buffer %s is corrupt (%s); moved to %s, starting a new one", self.path, why, aside
        )
        self.health.alarm(DB_CORRUPTED, f"moved to {aside.name}: {why}")
        self.health.count("db_corrupted")
        salvage, salvaged_seq = salvage_rows(aside)
        db = _connect(self.path, self.config.synchronous)
        migrate(db)
        self._page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        self._recount(db)
        self._reserved = read_mark(self.mark_path)
        self._seq = max(self._reserved, salvaged_seq)
        if salvage:
            with db.atomic():
                db.conn.executemany(
                    "INSERT OR IGNORE INTO outbox (seq, created, body) VALUES (?, ?, ?)",
                    [(r.seq, r.created, r.body) for r in salvage],
                )
                self._store_seq(db)
            self.health.count("events_salvaged", len(salvage))
            self._recount(db)
        return db

    def _store_seq(self, db: sqlite_utils.Database) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('seq', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [str(self._seq)],
        )

    @property
    def db(self) -> sqlite_utils.Database:
        """The underlying database (for tests and read-only inspection)."""
        return self._db

    @property
    def seq(self) -> int:
        """The last seq handed out."""
        return self._seq

    def close(self) -> None:
        """Close the database (held events are lost; their seqs were never sent)."""
        with self._lock:
            if len(self._hold):
                log.warning("closing with %d events held in memory (disk full)", len(self._hold))
            self._db.conn.close()

    # -- writing --------------------------------------------------------------

    def append(self, fields: Mapping[str, Any]) -> ShelfEvent:
        """Commit one event; returns it with its seq. See :meth:`append_many`."""
        out = self.append_many([fields])
        if not out:
            raise EventInvalid(f"event not accepted: {dict(fields)!r}")
        return out[0]

    def append_many(self, many: Iterable[Mapping[str, Any]]) -> list[ShelfEvent]:
        """Validate, number and commit events in one transaction; returns those accepted.

        ``device_id`` and ``seq`` are filled in here. Invalid fields are logged, counted
        (``events_invalid``) and skipped. Events dropped because the cap binds are
        counted (``events_dropped``). While the disk is full, events are held in memory
        (``events_held``) and written, in order, as soon as writing works again.
        """
        with self._lock:
            events: list[ShelfEvent] = []
            seq = self._seq
            for fields in many:
                data = dict(fields)
                data["device_id"] = self.device_id
                data["seq"] = seq + 1
                ev = self._validate(data)
                if ev is None:
                    continue
                seq += 1
                events.append(ev)
            if not events:
                return []
            if len(self._hold) and not self._flush_held():
                return self._hold_or_drop(events)
            return self._write(events)

    def _validate(self, data: dict[str, Any]) -> ShelfEvent | None:
        """The event, or ``None`` (logged, counted) when its fields are invalid.

        The uploaded window is only training material: a window the wire refuses
        (too many changes, say) is left off (``windows_dropped``) rather than the decision.
        """
        try:
            return ShelfEvent.model_validate(data)
        except ValidationError as err:
            if data.get("window") is not None:
                try:
                    ev = ShelfEvent.model_validate({**data, "window": None})
                except ValidationError:
                    pass
                else:
                    log.warning("window left off event: %s", err.errors()[:3])
                    self.health.count("windows_dropped")
                    return ev
            log.warning("invalid event dropped: %s", err.errors()[:3])
            self.health.count("events_invalid")
            return None

    def _write(self, events: list[ShelfEvent]) -> list[ShelfEvent]:
        now = self._clock()
        rows = [(e.seq, now, e.model_dump_json()) for e in events]
        try:
            incoming = sum(self.policy.row_bytes(len(r[2])) for r in rows)
            if self._used_bytes() + incoming <= self.policy.max_bytes:
                plan = RoomPlan(0, 0, True)  # fast path: no need to count rows
            else:
                plan = self.policy.plan_room(self._usage(), incoming, len(rows))
            if plan.evict_synced or plan.evict_unsynced:
                self._evict(plan.evict_synced, plan.evict_unsynced)
            if plan.binds:
                self.health.alarm(BUFFER_FULL, f"cap {self.config.max_mb} MB binds")
            else:
                self.health.clear(BUFFER_FULL)
            if not plan.admit:
                self.health.count("events_dropped", len(events))
                log.error("buffer full: %d new events dropped", len(events))
                return []
            top = rows[-1][0]
            if top > self._reserved:
                write_mark(self.mark_path, top + self.config.seq_reserve)
                self._reserved = top + self.config.seq_reserve
            with self._db.atomic():
                self._db.conn.executemany(
                    "INSERT INTO outbox (seq, created, body) VALUES (?, ?, ?)", rows
                )
                self._seq = top
                self._store_seq(self._db)
        except (sqlite3.Error, OSError) as err:
            self._seq = min(self._seq, events[0].seq - 1)
            if is_disk_full(err):
                return self._disk_full(events, err)
            if is_corrupt(err):
                self._db = self._replace_corrupt(str(err))
                base = self._seq
                events = [e.model_copy(update={"seq": base + i + 1}) for i, e in enumerate(events)]
                return self._write(events)
            raise OutboxError(f"cannot write buffer {self.path}: {err}") from err
        self._n_unsynced += len(events)
        self.health.count("events_committed", len(events))
        return events

    def _disk_full(self, events: list[ShelfEvent], err: BaseException) -> list[ShelfEvent]:
        if not self.health.alarmed(DISK_FULL):
            log.error("disk full, holding events in memory: %s", err)
        self.health.alarm(DISK_FULL, str(err))
        self._next_retry = time.monotonic() + self.config.retry_full_s
        return self._hold_or_drop(events)

    def _hold_or_drop(self, events: list[ShelfEvent]) -> list[ShelfEvent]:
        # Held events keep their seqs; later events number on from them.
        refused = self._hold.offer(events)  # refuses a tail once full
        kept = events[: len(events) - len(refused)]
        if kept:
            self._seq = max(self._seq, kept[-1].seq)
        self.health.count("events_held", len(kept))
        self.health.count("events_dropped", len(refused))
        self.health.set("events_in_memory", len(self._hold))
        return kept

    def _flush_held(self, *, force: bool = False) -> bool:
        """Try to write held events; True when none are left held."""
        if not force and time.monotonic() < self._next_retry:
            return False
        held = self._hold.peek_all()
        self._hold.release(len(held))
        first = held[0].seq
        self._seq = first - 1
        written = self._write(held)
        if len(self._hold):  # still full: _write re-held them
            return False
        self.health.clear(DISK_FULL)
        self.health.set("events_in_memory", 0)
        log.info("disk writable again: %d held events committed", len(written))
        return True

    def retry_held(self) -> bool:
        """Try now to write events held while the disk was full; True when none are left."""
        with self._lock:
            return not len(self._hold) or self._flush_held(force=True)

    @property
    def held(self) -> int:
        """Events waiting in memory for the disk."""
        return len(self._hold)

    def _used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._page_size)

    def _usage(self) -> Usage:
        return Usage(self._used_bytes(), self._n_synced, self._n_unsynced)

    def _recount(self, db: sqlite_utils.Database) -> None:
        """Row counts by state, kept in memory from here on (this is the only writer)."""
        self._n_unsynced = int(
            db.execute("SELECT count(*) FROM outbox WHERE synced_at IS NULL").fetchone()[0]
        )
        self._n_synced = int(
            db.execute("SELECT count(*) FROM outbox WHERE synced_at IS NOT NULL").fetchone()[0]
        )
        self._n_rejected = int(db.execute("SELECT count(*) FROM quarantine").fetchone()[0])
        if self._n_rejected:
            self.health.alarm(EVENTS_REJECTED, f"{self._n_rejected} events refused by the cloud")

    def _evict(self, synced: int, unsynced: int) -> None:
        with self._db.atomic():
            gone_synced = gone_unsynced = 0
            if synced:
                gone_synced = self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
                    "WHERE synced_at IS NOT NULL ORDER BY seq LIMIT ?)",
                    [synced],
                ).rowcount
            if unsynced:
                gone_unsynced = self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
                    "WHERE synced_at IS NULL ORDER BY seq LIMIT ?)",
                    [unsynced],
                ).rowcount
        self._n_synced -= gone_synced
        self._n_unsynced -= gone_unsynced
        self.health.count("synced_evicted", synced)
        if unsynced:
            self.health.count("unsynced_evicted", unsynced)
            log.error(
                "buffer full: %d unsent events evicted (policy %s)", unsynced, self.policy.on_full
            )

    # -- reading, acknowledging -----------------------------------------------

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
        with self._lock:
            try:
                with self._db.atomic():
                    done = rows.mark_synced(self._db, seqs, now)
            except sqlite3.Error as err:
                log.warning("could not record %d acks: %s", len(seqs), err)
                self.health.count("ack_write_failed")
                if is_corrupt(err):
                    self._db = self._replace_corrupt(str(err))
                return 0
        with self._lock:
            self._n_unsynced -= done
            self._n_synced += done
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
        with self._lock:
            try:
                done = rows.mark_synced_through(self._db, highest_contiguous, now)
            except sqlite3.Error as err:
                log.warning("could not record acks through %d: %s", highest_contiguous, err)
                self.health.count("ack_write_failed")
                return 0
            self._n_unsynced -= done
            self._n_synced += done
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
        with self._lock:
            try:
                with self._db.atomic():
                    moved = rows.quarantine(self._db, seqs, reason, now)
            except sqlite3.Error as err:
                log.warning("could not quarantine %d rows: %s", len(seqs), err)
                return 0
            self._n_unsynced -= moved
            self._n_rejected += moved
            total = self._n_rejected
        if moved:
            log.error("%d events refused by the cloud, quarantined: %s", moved, reason)
            self.health.count(EVENTS_REJECTED, moved)
            self.health.alarm(EVENTS_REJECTED, f"{total} events refused by the cloud: {reason}")
        return moved

    def rejected(self, limit: int = 1000) -> list[RejectedRow]:
        """Quarantined rows, oldest first."""
        with self._lock:
            return rows.rejected(self._db, limit)

    def requeue_rejected(self, seqs: Sequence[int] | None = None) -> int:
        """Put quarantined rows (all, or ``seqs``) back in the outbox to be sent again."""
        if seqs is not None and not seqs:
            return 0
        with self._lock:
            with self._db.atomic():
                back = rows.requeue(self._db, seqs)
            self._n_rejected -= back
            self._n_unsynced += back
            if not self._n_rejected:
                self.health.clear(EVENTS_REJECTED)
            return back

    def maintain(self) -> int:
        """Delete synced rows past retention; returns how many."""
        cutoff = self.policy.expiry_cutoff(self._clock())
        with self._lock:
            try:
                cur = self._db.execute(
                    "DELETE FROM outbox WHERE synced_at IS NOT NULL AND synced_at < ?", [cutoff]
                )
            except sqlite3.Error as err:
                log.warning("retention pass failed: %s", err)
                return 0
            self._n_synced -= cur.rowcount
            if len(self._hold):
                self._flush_held()
            return cur.rowcount

    def stats(self) -> BufferStats:
        """Depth, age of the oldest unsent row, synced rows, bytes used, last seq, held."""
        with self._lock:
            row = self._db.execute(
                "SELECT created FROM outbox WHERE synced_at IS NULL ORDER BY seq LIMIT 1"
            ).fetchone()
            usage = self._usage()
            return BufferStats(
                depth=self._n_unsynced,
                oldest_unsynced=row[0] if row else None,
                synced_rows=usage.synced_rows,
                used_bytes=usage.used_bytes,
                seq=self._seq,
                held=len(self._hold),
                rejected=self._n_rejected,
            )
