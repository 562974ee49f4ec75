"""Telling a database that is away from a value it will never take.

Ingest retries the first kind with backoff and refuses the second for good, so a
payload can never make a worker retry forever nor end it. Pure: an exception in,
a verdict out.
"""

from __future__ import annotations

from sqlalchemy import exc as sa

TRANSIENT: tuple[type[BaseException], ...] = (
    sa.OperationalError,  # connection lost, server restarting, SQLite busy or locked
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,  # no pooled connection free in time
    ConnectionError,
    TimeoutError,
)


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` says the database is away (retry later), not that the data is bad."""
    if isinstance(err, sa.DBAPIError) and err.connection_invalidated:
        return True
    return isinstance(err, TRANSIENT)


def reason(err: BaseException, limit: int = 300) -> str:
    """One line saying what went wrong, short enough for an ack or a log line."""
    text = str(err).strip().splitlines()
    first = text[0] if text else type(err).__name__
    return first[:limit]
