"""Telling a database that is away from a value it will never take.

Ingest retries the first kind with backoff and refuses the second for good, so a
payload can never make a worker retry forever nor end it. Pure: an exception in,
a verdict out; :class:`RateLimitedLog` keeps the log of refusals bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import exc as sa

TRANSIENT: tuple[type[BaseException], ...] = (
    sa.OperationalError,  # connection lost, server restarting, SQLite busy or locked
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,  # no pooled connection free in time
    # the server's fault, never the payload's (every value is a bound parameter): a
    # missing table, an aborted transaction. Retried and shown in /v1/health, so a
    # deployment mistake holds events back rather than refusing them for good.
    sa.ProgrammingError,
    sa.InternalError,
    sa.NotSupportedError,
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


class RateLimitedLog:
    """Warnings of refusals, at most ``per_minute`` lines a minute plus a count of the rest.

    A unit that sends garbage in a loop must not fill the cloud's disk with log lines.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.per_minute, self.clock = logger, per_minute, clock
        self._window_start = clock()
        self._logged = 0
        self.suppressed = 0

    def __call__(self, msg: str, *args: object) -> None:
        now = self.clock()
        if now - self._window_start >= 60.0:
            if self.suppressed:
                self.logger.warning(
                    "%d more refusals in the last minute not logged", self.suppressed
                )
            self._window_start, self._logged, self.suppressed = now, 0, 0
        if self._logged < self.per_minute:
            self._logged += 1
            self.logger.warning(msg, *args)
        else:
            self.suppressed += 1
