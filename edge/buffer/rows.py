"""Every statement on the outbox's rows: insert, pending, mark synced, evict, expire,
the quarantine, the counts and the read-only view ``edge status`` shows.

Plain SQL over one open database, no locking and no counters: :class:`~edge.buffer.store.Buffer`
calls these under its lock, inside its transactions (its writes through its one error
handling), and keeps its counts and health. Nothing outside :mod:`edge.buffer` reads or
writes the outbox's tables. Seq lists are bound in chunks of :data:`CHUNK` (SQLite's
host-parameter limit).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.buffer.db import Db
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


def insert(db: Db, rows: Iterable[tuple[int, float, str]], *, or_ignore: bool = False) -> None:
    """Add new rows ``(seq, created, body)`` (inside the caller's transaction).

    ``or_ignore``: a seq already present is left as it is (salvaged rows).
    """
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    db.conn.executemany(f"{verb} INTO outbox (seq, created, body) VALUES (?, ?, ?)", rows)


def read_seq(db: Db) -> int:
    """The last seq handed out: the stored mark or the highest row, whichever is higher."""
    row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    meta = int(row[0]) if row else 0
    top = db.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
    return max(meta, int(top))


def store_seq(db: Db, seq: int) -> None:
    """Record the last seq handed out (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('seq', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [str(seq)],
    )


def counts(db: Db) -> tuple[int, int, int]:
    """Rows unsent, rows synced, rows quarantined."""
    unsynced = db.execute("SELECT count(*) FROM outbox WHERE synced_at IS NULL").fetchone()[0]
    synced = db.execute("SELECT count(*) FROM outbox WHERE synced_at IS NOT NULL").fetchone()[0]
    rejected = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    return int(unsynced), int(synced), int(rejected)


def pages_in_use(db: Db) -> int:
    """Pages of the file holding data (the free list left out)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(pages - free)


def oldest_unsynced(db: Db) -> float | None:
    """When the oldest unsent row was committed, or ``None``."""
    row = db.execute(
        "SELECT created FROM outbox WHERE synced_at IS NULL ORDER BY seq LIMIT 1"
    ).fetchone()
    return None if row is None else float(row[0])


def evict_oldest(db: Db, n: int, *, synced: bool) -> int:
    """Delete the ``n`` lowest-seq rows that are synced (or unsent); returns how many."""
    state = "IS NOT NULL" if synced else "IS NULL"
    return int(
        db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
            f"WHERE synced_at {state} ORDER BY seq LIMIT ?)",
            [n],
        ).rowcount
    )


def expire_synced(db: Db, cutoff: float) -> int:
    """Delete the rows synced before ``cutoff``; returns how many."""
    return int(
        db.execute(
            "DELETE FROM outbox WHERE synced_at IS NOT NULL AND synced_at < ?", [cutoff]
        ).rowcount
    )


def pending(db: Db, limit: int, *, before: float | None, since: float | None) -> list[PendingRow]:
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


def mark_synced(db: Db, seqs: Sequence[int], now: float) -> int:
    """Mark the unsent rows among ``seqs`` synced at ``now``; returns how many."""
    done = 0
    for part, marks in _chunks(seqs):
        done += db.execute(
            f"UPDATE outbox SET synced_at = ? WHERE seq IN ({marks}) AND synced_at IS NULL",
            [now, *part],
        ).rowcount
    return done


def mark_synced_through(db: Db, highest: int, now: float) -> int:
    """Mark every unsent row with ``seq <= highest`` synced; returns how many."""
    return int(
        db.execute(
            "UPDATE outbox SET synced_at = ? WHERE synced_at IS NULL AND seq <= ?", [now, highest]
        ).rowcount
    )


def quarantine(db: Db, seqs: Sequence[int], reason: str, now: float) -> int:
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


def rejected(db: Db, limit: int) -> list[RejectedRow]:
    """Quarantined rows, oldest first."""
    cur = db.execute(
        "SELECT seq, created, body, reason, rejected_at FROM quarantine ORDER BY seq LIMIT ?",
        [limit],
    )
    return [RejectedRow(*r) for r in cur.fetchall()]


def requeue(db: Db, seqs: Sequence[int] | None) -> int:
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


def last_body(db: Db) -> str | None:
    """The JSON of the newest row (sent or not): where a restarted agent resumes."""
    row = db.execute("SELECT body FROM outbox ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def read_view(path: Path) -> dict[str, Any]:
    """:func:`status_view` of the file at ``path``, opened read-only (the agent may be
    writing it, or stopped); ``{"present": False}`` when there is none and ``error`` when
    it cannot be read."""
    if not path.exists():
        return {"present": False}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as err:
        return {"present": True, "error": str(err)}
    try:
        return {"present": True, **status_view(conn), "file_bytes": path.stat().st_size}
    except sqlite3.Error as err:
        return {"present": True, "error": str(err)}
    finally:
        conn.close()


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
