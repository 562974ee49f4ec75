"""Sensor time shared by the workers: pacing, progress and the hand-over of values.

Load cells and camera run on their own threads, each on its sensor clock (monotonic
seconds on a unit, simulated seconds in sim mode). :class:`Inbox` is where they leave
their :class:`~models.types.WeightChange` s and :class:`~models.types.Presence` s with
how far each has got; the decision worker decides only up to the *horizon*, the
earliest progress of the sources that are up, so nothing can still arrive for a
window it closes. A source that is down (camera lost) leaves the horizon until it is
back; one that ended (a finished simulation) no longer holds it back.
:class:`Pace` maps simulated time onto the wall clock at ``speed`` times real time.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable

from models.types import Presence, WeightChange

Item = tuple[float, int, Presence | WeightChange]


class Pace:
    """Simulated seconds against wall seconds: ``speed`` x real time; 0 means no pacing.

    Simulated time up to ``origin`` is not paced at all (catching up after a restart).
    With ``parties`` (the paced workers' names), the clock starts only once each of
    them has caught up to ``origin`` — or ``max_hold_s`` after the first did — so a
    worker that replays faster waits for the others instead of pacing on alone while
    they run unpaced behind it.
    """

    HOLD_S = 0.05  # how long a worker past the origin waits before asking again

    def __init__(
        self,
        speed: float,
        *,
        origin: float = 0.0,
        parties: Iterable[str] = (),
        max_hold_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0 or not math.isfinite(speed):
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self.origin = origin
        self.parties = frozenset(parties)
        self.max_hold_s = max_hold_s
        self._clock = clock
        self._wall0: float | None = None
        self._arrived: dict[str, float] = {}
        self._lock = threading.Lock()

    def delay(self, t: float, who: str = "") -> float:
        """Wall seconds to wait before simulated time ``t`` is due for ``who`` (0: due now)."""
        if self.speed == 0 or t <= self.origin:
            return 0.0
        now = self._clock()
        with self._lock:
            if self._wall0 is None:
                self._arrived.setdefault(who, now)
                first = min(self._arrived.values())
                if not self.parties <= self._arrived.keys() and now - first < self.max_hold_s:
                    return self.HOLD_S
                self._wall0 = now
            due = self._wall0 + (t - self.origin) / self.speed
        return max(0.0, due - now)

    def wait(self, t: float, stop: threading.Event, who: str = "") -> bool:
        """Sleep until ``t`` is due for ``who``; False when ``stop`` was set meanwhile."""
        while (d := self.delay(t, who)) > 0:
            if stop.wait(d):
                return False
        return not stop.is_set()


class Inbox:
    """Thread-safe hand-over of sensed values, with each source's progress and state."""

    def __init__(self, sources: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._items: list[Item] = []
        self.progress: dict[str, float] = {s: -math.inf for s in sources}
        self.up: dict[str, bool] = dict.fromkeys(self.progress, True)
        self._bay_t: list[float] = []  # frame times where the bay occupancy changed
        self._bay_since: list[float | None] = []
        self._levels: list[tuple[float, dict[int, float]]] = []  # (t, grams per slot)

    LEVEL_EVERY_S = 5.0  # sensor seconds between two kept load snapshots

    def put_levels(self, t: float, grams: dict[int, float]) -> None:
        """The slots' settled absolute loads at sensor time ``t`` (kept every few seconds)."""
        with self._lock:
            if self._levels and t - self._levels[-1][0] < self.LEVEL_EVERY_S:
                return
            self._levels.append((t, dict(grams)))

    def levels_at(self, t: float) -> tuple[float, dict[int, float]]:
        """``(time, loads)`` of the newest snapshot at or before ``t``; older ones go."""
        with self._lock:
            i = bisect.bisect_right([x for x, _ in self._levels], t) - 1
            if i < 0:
                return -math.inf, {}
            at, got = self._levels[i]
            del self._levels[:i]
            return at, dict(got)

    def put_changes(
        self, changes: Iterable[WeightChange], t: float, source: str = "weight"
    ) -> None:
        """Changes settled up to sensor time ``t``, and that the source got to ``t``."""
        with self._lock:
            self._items.extend((c.t_settled, 1, c) for c in changes)
            self.progress[source] = max(self.progress[source], t)

    def put_presences(
        self,
        presences: Iterable[Presence],
        t: float,
        *,
        bay_since: float | None = None,
        source: str = "camera",
    ) -> None:
        """Episodes closed up to frame time ``t``; ``bay_since``: start of an open bay episode."""
        with self._lock:
            self._items.extend((p.t_leave, 0, p) for p in presences)
            self.progress[source] = max(self.progress[source], t)
            last = self._bay_since[-1] if self._bay_since else None
            if not self._bay_t or last != bay_since:
                self._bay_t.append(t)
                self._bay_since.append(bay_since)

    def set_up(self, source: str, up: bool) -> None:
        """Mark a source up or down (a down source does not hold the horizon)."""
        with self._lock:
            self.up[source] = up

    def finish(self, source: str) -> None:
        """The source ended for good (a simulation ran out): it no longer holds the horizon."""
        with self._lock:
            self.progress[source] = math.inf

    def horizon(self) -> float | None:
        """Sensor time up to which every live source has delivered (None: none is up)."""
        with self._lock:
            live = [p for s, p in self.progress.items() if self.up[s]]
        if not live:
            return None
        h = min(live)
        return None if h == -math.inf else h

    def take(self, until: float) -> list[Item]:
        """Values with sensor time up to ``until``, in time order (presences first on ties)."""
        with self._lock:
            due = [i for i in self._items if i[0] <= until]
            self._items = [i for i in self._items if i[0] > until]
        due.sort(key=lambda i: (i[0], i[1], _key(i[2])))
        return due

    def occupied_since(self, t: float) -> float | None:
        """When the bay episode open at sensor time ``t`` began (None: nobody there)."""
        with self._lock:
            i = bisect.bisect_right(self._bay_t, t) - 1
            since = self._bay_since[i] if i >= 0 else None
            if i > 0:  # what is older than the last change before t is no longer needed
                del self._bay_t[: i - 1]
                del self._bay_since[: i - 1]
        return since

    def latest(self, default: float) -> float:
        """Sensor time of the newest value waiting (``default`` when none waits)."""
        with self._lock:
            return max((i[0] for i in self._items), default=default)

    def pending(self) -> int:
        """Values waiting to be decided."""
        with self._lock:
            return len(self._items)


def _key(v: Presence | WeightChange) -> tuple[float, str]:
    if isinstance(v, Presence):
        return (v.t_enter, v.zone)
    return (v.t_start, str(v.slot))
