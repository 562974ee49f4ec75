"""Waiting on a condition that other threads or processes make true, with a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, poll: float = 0.02) -> None:
    """Return once ``cond()`` holds; fail with AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    idle = threading.Event()
    while not cond():
        assert time.monotonic() < deadline, f"condition not reached in {timeout} s"
        idle.wait(poll)
