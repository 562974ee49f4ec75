"""Opening the outbox file: connect, check, migrate, read the seq; or start anew after corruption.

:func:`open_outbox` opens a file that passes ``PRAGMA quick_check`` and is migrated,
and reads its high-water seq (raising :class:`sqlite3.DatabaseError` when the file is
corrupt). :func:`start_anew` moves a corrupt file aside, salvages the unsent rows
that still read, and starts a fresh file numbered above every seq ever handed out
(the seq mark beside the database).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.buffer import rows
from edge.buffer.db import Db
from edge.buffer.recovery import move_aside, salvage_rows
from edge.buffer.schema import migrate, pragmas
from edge.buffer.seqmark import read_mark


@dataclass
class Opened:
    """An open outbox: the database, its last seq, the reserved seq mark and page size."""

    db: Db
    seq: int
    reserved: int
    page_size: int
    salvaged: int = 0


def connect(path: Path, synchronous: str) -> Db:
    """A connection with the outbox's pragmas (one writer; autocommit outside transactions)."""
    db = Db.open(path)
    for p in pragmas(synchronous):
        db.execute(p)
    return db


def _page_size(db: Db) -> int:
    return int(db.execute("PRAGMA page_size").fetchone()[0])


def open_outbox(path: Path, synchronous: str, mark_path: Path) -> Opened:
    """Open, check and migrate ``path``; raises ``sqlite3.DatabaseError`` when it is corrupt."""
    fresh = not path.exists()
    db = None
    try:
        db = connect(path, synchronous)
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {check[:3]}")
        migrate(db)
        seq = rows.read_seq(db)
    except sqlite3.DatabaseError:
        if db is not None:
            with contextlib.suppress(Exception):
                db.conn.close()
        raise
    reserved = read_mark(mark_path)
    if fresh and reserved > seq:
        seq = reserved  # the database was removed: never reuse a seq
    return Opened(db, seq, reserved, _page_size(db))


def start_anew(path: Path, synchronous: str, mark_path: Path, stamp: int) -> tuple[Opened, Path]:
    """Move the corrupt ``path`` aside, start a new file, put the salvaged unsent rows in it."""
    aside = move_aside(path, stamp)
    salvage, salvaged_seq = salvage_rows(aside)
    db = connect(path, synchronous)
    migrate(db)
    reserved = read_mark(mark_path)
    seq = max(reserved, salvaged_seq)
    if salvage:
        with db.atomic():
            rows.insert(db, [(r.seq, r.created, r.body) for r in salvage], or_ignore=True)
            rows.store_seq(db, seq)
    return Opened(db, seq, reserved, _page_size(db), len(salvage)), aside
