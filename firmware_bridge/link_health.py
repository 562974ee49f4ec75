"""Whether a load-cell link works, judged from what it delivered lately. Pure.

A link is *down* when it is ``unplugged`` (the port is not open), ``silent`` (open,
but no good frame for ``stale_after`` seconds: a hung MCU, a cable that carries
power but no data) or ``damaged`` (most of what arrived lately was dropped: CRC
errors, malformed frames, frames with an implausible time). Otherwise it is ``ok``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

LinkState = Literal["ok", "unplugged", "silent", "damaged"]
WINDOW_S = 5.0  # how far back "lately" reaches
DAMAGED_SHARE = 0.5  # of the frames that arrived lately
MIN_DAMAGED = 10  # and at least this many: a stray CRC error is no outage


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """The link's state, and a line for people."""

    state: LinkState
    detail: str

    @property
    def ok(self) -> bool:
        """True when the link delivers."""
        return self.state == "ok"


def judge_link(
    *, connected: bool, since_frame_s: float, good: int, damaged: int, stale_after: float
) -> LinkHealth:
    """The state from the port, the time since the last good frame and the recent counts."""
    if not connected:
        return LinkHealth("unplugged", "port not open (unplugged or failing to open)")
    if since_frame_s > stale_after:
        quiet = "no frame yet" if since_frame_s == float("inf") else f"{since_frame_s:.0f} s"
        return LinkHealth("silent", f"no good frame for {quiet}")
    total = good + damaged
    if damaged >= MIN_DAMAGED and damaged > DAMAGED_SHARE * total:
        return LinkHealth("damaged", f"{damaged} of {total} frames dropped in {WINDOW_S:.0f} s")
    return LinkHealth("ok", f"{good} frames in {WINDOW_S:.0f} s")


class RecentCounts:
    """Good and damaged frames over the last :data:`WINDOW_S` seconds."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._items: deque[tuple[float, int, int]] = deque()
        self.good = 0
        self.damaged = 0

    def add(self, now: float, good: int, damaged: int) -> None:
        """Count what one read gave at ``now``."""
        if good or damaged:
            self._items.append((now, good, damaged))
            self.good += good
            self.damaged += damaged
        self.expire(now)

    def expire(self, now: float) -> None:
        """Forget what is older than the window."""
        while self._items and self._items[0][0] < now - self.window_s:
            _, g, d = self._items.popleft()
            self.good -= g
            self.damaged -= d
