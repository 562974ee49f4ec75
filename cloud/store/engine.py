"""Open the cloud store: an engine per URL, dialect pragmas, migrations to head.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before
the cloud acks it) and a busy timeout; writers take the lock at ``BEGIN
IMMEDIATE`` so two writers never deadlock upgrading a read lock. PostgreSQL goes
through psycopg 3. Reads use :attr:`Store.engine`, writes :attr:`Store.writer`
or, on the hot path, :meth:`Store.writing`. A few processes can share one
SQLite file (WAL, busy timeout); a fleet's worth of replicas wants PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from cloud.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class Store:
    """An opened store: the read engine and the write engine, each with its own pool.

    Reads never wait for a connection behind writes: a burst of ingest holds
    write connections only.
    """

    engine: Engine
    writer: Engine
    _write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite, writers of this process queue on a lock first.

        SQLite lets one writer in at a time and makes the others poll (busy
        timeout, sleeping between tries); queueing on a process lock hands the
        database to the next writer the moment the last one commits.
        """
        if self.dialect != "sqlite":
            with self.writer.begin() as conn:
                yield conn
            return
        with self._write_lock, self.writer.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def read_capacity(self) -> int | None:
        """Read connections handed out at once (pool size plus overflow); None: no bound."""
        return pool_capacity(self.engine)

    @property
    def write_capacity(self) -> int | None:
        """Write connections handed out at once; None: no bound."""
        return pool_capacity(self.writer)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.writer.dispose()


def pool_capacity(engine: Engine) -> int | None:
    """Connections ``engine``'s pool hands out at once: size plus overflow (None: unbounded)."""
    pool: Any = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", None)
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return None
    return int(size()) + overflow


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, pool_size: int = 20, max_overflow: int | None = None) -> Engine:
    """An engine for ``url`` with the pragmas and pool this service needs.

    The pool keeps ``pool_size`` connections and opens up to ``max_overflow`` more
    (default: as many again); past that, callers wait for one.
    """
    overflow = pool_size if max_overflow is None else max_overflow
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise StoreError("the cloud store needs a SQLite file, not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=overflow, pool_timeout=30)
        _sqlite_hooks(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=pool_size, max_overflow=overflow, pool_pre_ping=True)
    raise StoreError(f"unsupported database URL {parsed.render_as_string()!r}")


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the Alembic scripts shipped in this package."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_store(
    url: str,
    *,
    pool_size: int = 20,
    write_pool_size: int | None = None,
    run_migrations: bool = True,
) -> Store:
    """Open the store at ``url``, migrated to the newest schema unless told not to.

    Reads get ``pool_size`` connections, writes ``write_pool_size`` (default: as
    many), each pool without overflow: a process holds at most their sum.
    """
    engine = make_engine(url, pool_size=pool_size, max_overflow=0)
    try:
        if run_migrations:
            migrate(engine)
    except Exception as err:
        engine.dispose()
        raise StoreError(f"cannot open the store: {err}") from err
    writes = make_engine(url, pool_size=write_pool_size or pool_size, max_overflow=0)
    return Store(engine=engine, writer=writes.execution_options(sqlite_immediate=True))
