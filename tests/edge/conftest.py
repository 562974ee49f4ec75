"""Fixtures of the edge tests: outbox buffers that are always closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.buffer import Buffer


class Buffers:
    """Opens :class:`edge.buffer.Buffer` s for one test and closes every one at its end."""

    def __init__(self) -> None:
        self.opened: list[Buffer] = []

    def open(self, path: Path, **kwargs: Any) -> Buffer:
        """A buffer on ``path`` (keyword arguments as :class:`~edge.buffer.Buffer` takes)."""
        buf = Buffer(path, **kwargs)
        self.opened.append(buf)
        return buf

    def close(self) -> None:
        """Close every buffer opened (closing one twice is harmless)."""
        for buf in reversed(self.opened):
            buf.close()
        self.opened.clear()


@pytest.fixture
def buffers() -> Iterator[Buffers]:
    """Open buffers with ``buffers.open(path, device_id=...)``; all closed after the test,
    whether it passed or failed."""
    opened = Buffers()
    try:
        yield opened
    finally:
        opened.close()
