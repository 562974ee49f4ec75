"""The outbox schema as numbered migrations, and the pragmas the database runs with.

``schema_version`` holds one row: the number of the last migration applied.
:func:`migrate` applies the missing ones in order, each in its own transaction, so
an old buffer file is brought forward at open and a new file is built from step 1.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.buffer.db import Db

Migration = Callable[[Db], None]


def _m1_outbox(db: Db) -> None:
    """The outbox and the seq high-water mark."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, created FLOAT NOT NULL, "
        "body TEXT NOT NULL, synced_at FLOAT)"
    )


def _m2_indexes(db: Db) -> None:
    """Partial indexes: unsent rows by seq, synced rows by when they were synced."""
    db.execute("CREATE INDEX outbox_unsynced ON outbox(seq, created) WHERE synced_at IS NULL")
    db.execute("CREATE INDEX outbox_synced ON outbox(synced_at) WHERE synced_at IS NOT NULL")


def _m3_live_index(db: Db) -> None:
    """Unsent rows by creation time, so the live rows are found without scanning a backlog."""
    db.execute(
        "CREATE INDEX outbox_unsynced_created ON outbox(created, seq) WHERE synced_at IS NULL"
    )


def _m4_quarantine(db: Db) -> None:
    """Events the cloud refused for good, kept with the reason (never resent, never dropped)."""
    db.execute(
        "CREATE TABLE quarantine (seq INTEGER PRIMARY KEY, created REAL NOT NULL, "
        "body TEXT NOT NULL, reason TEXT NOT NULL, rejected_at REAL NOT NULL)"
    )


MIGRATIONS: tuple[Migration, ...] = (_m1_outbox, _m2_indexes, _m3_live_index, _m4_quarantine)
LATEST = len(MIGRATIONS)


def schema_version(db: Db) -> int:
    """The number of the last migration applied (0 for an empty file)."""
    if "schema_version" not in db.table_names():
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(db: Db) -> int:
    """Apply missing migrations in order; returns the version reached."""
    if "schema_version" not in db.table_names():
        with db.atomic():
            db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
    current = schema_version(db)
    if current > LATEST:
        raise RuntimeError(f"buffer schema {current} is newer than this agent knows ({LATEST})")
    for number in range(current + 1, LATEST + 1):
        with db.atomic():
            MIGRATIONS[number - 1](db)
            db.execute("UPDATE schema_version SET version = ?", [number])
    return LATEST


def pragmas(synchronous: str) -> list[str]:
    """Pragmas for an SD card: WAL, small checkpoints, a capped WAL file, memory temp."""
    return [
        "PRAGMA page_size = 4096",
        "PRAGMA journal_mode = WAL",
        f"PRAGMA synchronous = {synchronous}",
        "PRAGMA wal_autocheckpoint = 256",  # checkpoint every ~1 MB of WAL
        "PRAGMA journal_size_limit = 1048576",  # truncate the WAL back to 1 MB after that
        "PRAGMA temp_store = MEMORY",
        "PRAGMA cache_size = -2048",  # 2 MB page cache
        "PRAGMA busy_timeout = 5000",
    ]
