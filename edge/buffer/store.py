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

The module is the writing half; :mod:`edge.buffer.opening` opens the file (or starts
anew after corruption) and :mod:`edge.buffer.acks` reads and acknowledges rows, with
the one error handling (busy, disk full, corruption) every later write goes through.
Every statement on the tables is in :mod:`edge.buffer.rows`; nothing outside the
package touches them.

Durability: WAL with ``synchronous=FULL`` by default, so a committed event survives
``kill -9`` and power loss (NORMAL would survive only a process crash). Events are
rare next to the cost of one WAL fsync, and several events of one decision share
one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.buffer import rows as outbox_rows
from edge.buffer.acks import EVENTS_REJECTED, OutboxRows
from edge.buffer.config import BufferConfig
from edge.buffer.db import Db
from edge.buffer.opening import Opened, open_outbox, start_anew
from edge.buffer.policy import HoldQueue, RetentionPolicy, RoomPlan, Usage
from edge.buffer.recovery import is_corrupt, is_disk_full
from edge.buffer.seqmark import write_mark
from edge.errors import EdgeError
from edge.health import BUFFER_FULL, DB_CORRUPTED, DISK_FULL, Health
from models.wire import ShelfEvent

log = logging.getLogger(__name__)


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


class Buffer(OutboxRows):
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

    def _open(self) -> Db:
        try:
            opened = open_outbox(self.path, self.config.synchronous, self.mark_path)
        except sqlite3.DatabaseError as err:
            if not is_corrupt(err):
                raise OutboxError(f"cannot open buffer {self.path}: {err}") from err
            return self._replace_corrupt(str(err))
        return self._take(opened)

    def _take(self, opened: Opened) -> Db:
        self._seq, self._reserved, self._page_size = opened.seq, opened.reserved, opened.page_size
        self._recount(opened.db)
        return opened.db

    def _replace_corrupt(self, why: str) -> Db:
        """Move the corrupt file (and its WAL) aside, salvage what reads, start anew."""
        opened, aside = start_anew(
            self.path, self.config.synchronous, self.mark_path, int(self._clock())
        )
        log.error(
            "buffer %s is corrupt (%s); moved to %s, starting a new one", self.path, why, aside
        )
        self.health.alarm(DB_CORRUPTED, f"moved to {aside.name}: {why}")
        self.health.count("db_corrupted")
        if opened.salvaged:
            self.health.count("events_salvaged", opened.salvaged)
        return self._take(opened)

    @property
    def db(self) -> Db:
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
                outbox_rows.insert(self._db, rows)
                self._seq = top
                outbox_rows.store_seq(self._db, top)
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
        return outbox_rows.pages_in_use(self._db) * self._page_size

    def _usage(self) -> Usage:
        return Usage(self._used_bytes(), self._n_synced, self._n_unsynced)

    def _recount(self, db: Db) -> None:
        """Row counts by state, kept in memory from here on (this is the only writer)."""
        self._n_unsynced, self._n_synced, self._n_rejected = outbox_rows.counts(db)
        if self._n_rejected:
            self.health.alarm(EVENTS_REJECTED, f"{self._n_rejected} events refused by the cloud")

    def _evict(self, synced: int, unsynced: int) -> None:
        with self._db.atomic():
            gone_synced = gone_unsynced = 0
            if synced:
                gone_synced = outbox_rows.evict_oldest(self._db, synced, synced=True)
            if unsynced:
                gone_unsynced = outbox_rows.evict_oldest(self._db, unsynced, synced=False)
        self._n_synced -= gone_synced
        self._n_unsynced -= gone_unsynced
        self.health.count("synced_evicted", synced)
        if unsynced:
            self.health.count("unsynced_evicted", unsynced)
            log.error(
                "buffer full: %d unsent events evicted (policy %s)", unsynced, self.policy.on_full
            )

    def stats(self) -> BufferStats:
        """Depth, age of the oldest unsent row, synced rows, bytes used, last seq, held."""
        with self._lock:
            usage = self._usage()
            return BufferStats(
                depth=self._n_unsynced,
                oldest_unsynced=outbox_rows.oldest_unsynced(self._db),
                synced_rows=usage.synced_rows,
                used_bytes=usage.used_bytes,
                seq=self._seq,
                held=len(self._hold),
                rejected=self._n_rejected,
            )
