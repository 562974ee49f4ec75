"""The seq high-water mark kept beside the database, so a new database never reuses a seq.

The buffer reserves seqs ahead in blocks: before handing out a seq beyond the
reserved mark it writes a higher mark to ``<db>.seq`` (temp file, fsync, rename).
A replaced (corrupt) database then starts above any seq ever issued.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from models.atomic import atomic_write


def read_mark(path: Path) -> int:
    """The reserved high-water seq, or 0 if the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return max(0, int(data["reserved"]))
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def write_mark(path: Path, reserved: int) -> None:
    """Atomically replace the mark with ``reserved`` (durable before returning)."""
    with atomic_write(path) as f:
        json.dump({"reserved": reserved}, f)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
