"""Camera health and reconnect pacing: small pure pieces the worker drives.

:class:`CameraHealth` is the status the agent reports (``starting``, ``up``,
``down``) with counters and the last error; :class:`Backoff` gives the waits
between reopen attempts (doubling from ``initial`` up to ``maximum``, back to
``initial`` after a good frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CameraStatus = Literal["starting", "up", "down"]


@dataclass
class CameraHealth:
    """What the camera worker knows about its camera; numbers and short text only."""

    status: CameraStatus = "starting"
    frames: int = 0
    bad_frames: int = 0
    failures: int = 0
    reconnects: int = 0
    last_error: str = ""
    last_frame_t: float | None = None
    down_since: float | None = None
    next_attempt_t: float | None = None

    def frame(self, t: float) -> None:
        """A good frame arrived at ``t`` (camera clock)."""
        if self.status == "down":
            self.reconnects += 1
        self.status = "up"
        self.frames += 1
        self.last_frame_t = t
        self.down_since = None
        self.next_attempt_t = None

    def down(self, now: float, error: str, next_attempt_t: float) -> None:
        """The camera failed at ``now``; the next reopen is due at ``next_attempt_t``."""
        if self.status != "down":
            self.down_since = now
        self.status = "down"
        self.failures += 1
        self.last_error = error[:200]
        self.next_attempt_t = next_attempt_t

    def as_dict(self) -> dict[str, str | int | float | None]:
        """A copy fit for a health message."""
        return {
            "status": self.status,
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "failures": self.failures,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "last_frame_t": self.last_frame_t,
            "down_since": self.down_since,
        }


@dataclass
class Backoff:
    """Exponential backoff: ``initial``, twice that, ... capped at ``maximum``."""

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 2.0
    _next: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self._next = self.initial

    def next(self) -> float:
        """The wait before the coming attempt; the one after will be longer."""
        wait = self._next
        self._next = min(self._next * self.factor, self.maximum)
        return wait

    def reset(self) -> None:
        """Back to the shortest wait (after the camera delivered again)."""
        self._next = self.initial
