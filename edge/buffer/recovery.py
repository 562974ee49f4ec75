"""Recognising a corrupt database or a full disk, and recovering from a corrupt file.

The buffer moves a corrupt file (with its WAL and shared-memory files) aside under a
``.corrupt-<time>`` name, keeps it for recovery, and reads out of it what it can: the
high-water seq and the unsent rows, which go into the new database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from edge.buffer.policy import PendingRow

SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26
ENOSPC = 28


def is_disk_full(err: BaseException) -> bool:
    """True for SQLite's 'database or disk is full' and for ENOSPC."""
    if isinstance(err, sqlite3.Error):
        code = getattr(err, "sqlite_errorcode", None)
        return code == SQLITE_FULL or "database or disk is full" in str(err)
    return isinstance(err, OSError) and err.errno == ENOSPC


def is_corrupt(err: BaseException) -> bool:
    """True when SQLite says the file is not a database or is malformed."""
    if not isinstance(err, sqlite3.DatabaseError) or is_disk_full(err):
        return False
    code = getattr(err, "sqlite_errorcode", None)
    text = str(err)
    return (
        code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "malformed" in text or "not a database" in text
    )


def move_aside(path: Path, stamp: int) -> Path:
    """Rename ``path`` and its ``-wal``/``-shm`` to ``<name>.corrupt-<stamp>[-n]``."""
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside


def salvage_rows(aside: Path) -> tuple[list[PendingRow], int]:
    """Unsent rows and the high-water seq readable from a corrupt file (maybe none)."""
    rows: list[PendingRow] = []
    top = 0
    try:
        conn = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    except sqlite3.Error:
        return rows, top
    try:
        with contextlib.suppress(sqlite3.Error, ValueError, TypeError):
            r = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            top = int(r[0]) if r else 0
        with contextlib.suppress(sqlite3.Error, ValueError, TypeError):
            top = max(top, int(conn.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0))
        with contextlib.suppress(sqlite3.Error):
            for seq, created, body in conn.execute(
                "SELECT seq, created, body FROM outbox WHERE synced_at IS NULL ORDER BY seq"
            ):
                rows.append(PendingRow(int(seq), float(created), str(body)))
    finally:
        conn.close()
    return rows, top
