"""The outbox's connection: ``sqlite3`` with the three things the buffer needs besides SQL.

:class:`Db` is a ``sqlite3`` connection opened in autocommit mode (``isolation_level=None``)
with :meth:`Db.atomic`, a transaction that commits on leaving and rolls back on any
exception (nested blocks are savepoints), and :meth:`Db.table_names`. The standard
library alone, so the unit imports nothing more for its buffer.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_savepoints = itertools.count(1)


class Db:
    """One autocommit connection to an outbox file."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path, *, timeout_s: float = 5.0) -> Db:
        """Connect to ``path`` (shared across the agent's threads; one writer at a time)."""
        return cls(
            sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=timeout_s
            )
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement."""
        return self.conn.execute(sql, params)

    def table_names(self) -> list[str]:
        """The tables in the file."""
        cur = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [str(r[0]) for r in cur.fetchall()]

    @contextmanager
    def atomic(self) -> Iterator[Db]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        if self.conn.in_transaction:
            name = f"outbox_{next(_savepoints)}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    self.conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        self.conn.execute("BEGIN")
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
