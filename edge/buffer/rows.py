"""The outbox's row statements: pending rows, marking them synced, the quarantine.

Plain SQL over one open database, no locking and no counters: :class:`~edge.buffer.store.Buffer`
calls these under its lock, inside its transactions, and keeps its counts and health.
Seq lists are bound in chunks of :data:`CHUNK` (SQLite's host-parameter limit).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from edge.buffer.policy import PendingRow

CHUNK = 500  # max host parameters per IN (...) list


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A quarantined row: what the cloud refused, why and when."""

    seq: int
    created: float
    body: str
    reason: str
    rejected_at: float


def _chunks(seqs: Sequence[int]) -> Iterator[tuple[list[int], str]]:
    """``seqs`` in parts, each with its ``?,?,…`` placeholder list."""
    for i in range(0, len(seqs), CHUNK):
        part = list(seqs[i : i + CHUNK])
        yield part, ",".join("?" * len(part))


def pending(
    db: sqlite_utils.Database, limit: int, *, before: float | None, since: float | None
) -> list[PendingRow]:
    """Unsent rows, oldest first (``before``/``since``: created before / at or after)."""
    if since is not None:
        cur = db.execute(
            "SELECT seq, created, body FROM outbox WHERE synced_at IS NULL "
            "AND created >= ? ORDER BY created, seq LIMIT ?",
            [since, limit],
        )
        return sorted((PendingRow(*r) for r in cur.fetchall()), key=lambda r: r.seq)
    if before is not None:
        # cheap test on the created index first: with no backlog, the seq-ordered
        # query below would walk every unsent row to find nothing
        if not db.execute(
            "SELECT 1 FROM outbox INDEXED BY outbox_unsynced_created "
            "WHERE synced_at IS NULL AND created < ? LIMIT 1",
            [before],
        ).fetchone():
            return []
        cur = db.execute(
            "SELECT seq, created, body FROM outbox WHERE synced_at IS NULL "
            "AND created < ? ORDER BY seq LIMIT ?",
            [before, limit],
        )
    else:
        cur = db.execute(
            "SELECT seq, created, body FROM outbox WHERE synced_at IS NULL ORDER BY seq LIMIT ?",
            [limit],
        )
    return [PendingRow(*r) for r in cur.fetchall()]


def mark_synced(db: sqlite_utils.Database, seqs: Sequence[int], now: float) -> int:
    """Mark the unsent rows among ``seqs`` synced at ``now``; returns how many."""
    done = 0
    for part, marks in _chunks(seqs):
        done += db.execute(
            f"UPDATE outbox SET synced_at = ? WHERE seq IN ({marks}) AND synced_at IS NULL",
            [now, *part],
        ).rowcount
    return done


def mark_synced_through(db: sqlite_utils.Database, highest: int, now: float) -> int:
    """Mark every unsent row with ``seq <= highest`` synced; returns how many."""
    return int(
        db.execute(
            "UPDATE outbox SET synced_at = ? WHERE synced_at IS NULL AND seq <= ?", [now, highest]
        ).rowcount
    )


def quarantine(db: sqlite_utils.Database, seqs: Sequence[int], reason: str, now: float) -> int:
    """Move the unsent rows among ``seqs`` into the quarantine with ``reason``; returns how many."""
    moved = 0
    for part, marks in _chunks(seqs):
        db.execute(
            "INSERT OR REPLACE INTO quarantine (seq, created, body, reason, rejected_at) "
            f"SELECT seq, created, body, ?, ? FROM outbox WHERE seq IN ({marks}) "
            "AND synced_at IS NULL",
            [reason[:500], now, *part],
        )
        moved += db.execute(
            f"DELETE FROM outbox WHERE seq IN ({marks}) AND synced_at IS NULL", part
        ).rowcount
    return moved


def rejected(db: sqlite_utils.Database, limit: int) -> list[RejectedRow]:
    """Quarantined rows, oldest first."""
    cur = db.execute(
        "SELECT seq, created, body, reason, rejected_at FROM quarantine ORDER BY seq LIMIT ?",
        [limit],
    )
    return [RejectedRow(*r) for r in cur.fetchall()]


def requeue(db: sqlite_utils.Database, seqs: Sequence[int] | None) -> int:
    """Put quarantined rows (all, or ``seqs``) back in the outbox; returns how many."""
    where, args = "", list(seqs or [])
    if seqs is not None:
        where = f" WHERE seq IN ({','.join('?' * len(args))})"
    db.execute(
        f"INSERT OR IGNORE INTO outbox (seq, created, body) SELECT seq, created, body "
        f"FROM quarantine{where}",
        args,
    )
    return int(db.execute(f"DELETE FROM quarantine{where}", args).rowcount)


def last_body(db: sqlite_utils.Database) -> str | None:
    """The JSON of the newest row (sent or not): where a restarted agent resumes."""
    row = db.execute("SELECT body FROM outbox ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def status_view(conn: sqlite3.Connection) -> dict[str, Any]:
    """Depth, oldest unsent row, synced rows, last sync and last seq (for ``edge status``)."""
    depth, oldest = conn.execute(
        "SELECT count(*), min(created) FROM outbox WHERE synced_at IS NULL"
    ).fetchone()
    synced, last_sync = conn.execute(
        "SELECT count(*), max(synced_at) FROM outbox WHERE synced_at IS NOT NULL"
    ).fetchone()
    row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    return {
        "depth": int(depth),
        "oldest_unsynced": oldest,
        "synced_rows": int(synced),
        "last_synced_at": last_sync,
        "seq": int(row[0]) if row else 0,
    }
