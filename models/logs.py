"""Logging for every command: plain lines, optional JSON lines, journald priorities under systemd.

Under systemd (stderr connected to the journal, as ``$JOURNAL_STREAM`` says) each line
starts with its syslog priority (``<3>`` for an error), so ``journalctl -p err`` shows
the errors alone, and the default level is INFO (the agent's and the cloud's starts,
workers, refusals); in a terminal the default stays WARNING and ``-v`` / ``-vv`` add
INFO / DEBUG. ``--log-json`` (or ``SHELFSENSE_LOG_JSON=1``) writes one JSON object a
line; ``SHELFSENSE_LOG_LEVEL`` sets the level by name. ``cloud serve`` gives uvicorn the
same formatter through :func:`formatter_config`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

JSON_ENV = "SHELFSENSE_LOG_JSON"
LEVEL_ENV = "SHELFSENSE_LOG_LEVEL"
PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (journald reads it from a ``<N>`` prefix)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def under_journald(env: dict[str, str] | None = None, fd: int | None = None) -> bool:
    """True when stderr is the journal's stream (``$JOURNAL_STREAM`` is its ``device:inode``)."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno() if fd is None else fd)
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def json_wanted(flag: bool = False, env: dict[str, str] | None = None) -> bool:
    """JSON lines when asked by flag or by ``SHELFSENSE_LOG_JSON`` (1, true, yes)."""
    value = (os.environ if env is None else env).get(JSON_ENV, "")
    return flag or value.strip().lower() in ("1", "true", "yes")


class LogFormatter(logging.Formatter):
    """Plain or JSON lines, with the journald priority prefix when ``journald``."""

    def __init__(self, *, json_lines: bool = False, journald: bool = False) -> None:
        super().__init__(PLAIN if not journald else "%(levelname)s %(name)s: %(message)s")
        self.json_lines = json_lines
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """One line (a traceback stays within the record: JSON escapes its newlines)."""
        if self.json_lines:
            doc: dict[str, Any] = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                doc["exception"] = self.formatException(record.exc_info)
            text = json.dumps(doc, default=str)
        else:
            text = super().format(record)
        if self.journald:
            pri = priority(record.levelno)
            text = "\n".join(f"<{pri}>{line}" for line in text.splitlines() or [""])
        return text


def formatter_config(*, json_lines: bool, journald: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` formatter entry for :class:`LogFormatter`."""
    return {"()": f"{__name__}.LogFormatter", "json_lines": json_lines, "journald": journald}


def level_for(verbose: int, *, journald: bool, env: dict[str, str] | None = None) -> int:
    """``SHELFSENSE_LOG_LEVEL`` if set, else INFO under journald or WARNING, less 10 per ``-v``."""
    name = (os.environ if env is None else env).get(LEVEL_ENV, "").strip().upper()
    named = logging.getLevelNamesMapping().get(name)
    if named is not None:
        return named
    return (logging.INFO if journald else logging.WARNING) - 10 * min(verbose, 2)


def configure(verbose: int = 0, *, json_flag: bool = False) -> None:
    """Set up the root logger for a command (stderr, the level and format above)."""
    journald = under_journald()
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter(json_lines=json_wanted(json_flag), journald=journald))
    logging.basicConfig(level=level_for(verbose, journald=journald), handlers=[handler], force=True)
