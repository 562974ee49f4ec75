"""One bay, one episode: the pipeline's presences and weight changes grouped into windows.

Every ``bay``-zone :class:`~models.types.Presence` opens an episode; the ``slot-<n>``
presences and the weight changes that start inside it (widened by ``margin_s``) belong
to it. A weight change with nobody at the bay is an episode of its own (presence
``None``): drift, a fault, a bump. Each window carries what the tokenizer needs around
it: the hour of day, the activity at the bay in the surrounding minute, and per slot of
its changes the unit weight, the recent changes and the level the unit believes in.

Pure: values in, values out. :class:`Windower` is the streaming form the agent feeds as
values arrive (it emits a window once nothing more can join it); :func:`build_windows`
groups a finished stream, as the dataset builder does.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext

BAY_ZONE = "bay"


@dataclass(frozen=True)
class WindowConfig:
    """Grouping knobs (seconds)."""

    margin_s: float = 2.0  # a change up to this long before/after the presence joins it
    hold_s: float = 6.0  # wait this long after a presence ends before emitting its window
    lookback_s: float = 600.0  # slot history counts changes this far back
    neighbour_s: float = 60.0  # activity this long before a window counts as neighbouring
    day_offset_s: float = 9 * 3600.0  # clock 0 is this many seconds after midnight


@dataclass
class _Episode:
    presence: Presence | None
    start: float
    end: float
    reaches: list[Presence] = field(default_factory=list)
    changes: list[WeightChange] = field(default_factory=list)


class Windower:
    """Streaming grouping of one bay's presences and changes into :class:`EventWindow` s."""

    def __init__(
        self,
        bay: str,
        unit_grams: Mapping[int, float],
        *,
        config: WindowConfig | None = None,
        initial_units: Mapping[int, int] | None = None,
    ) -> None:
        self.bay = bay
        self.unit_grams = dict(unit_grams)
        self.cfg = config or WindowConfig()
        self.units: dict[int, int] | None = (
            dict(initial_units) if initial_units is not None else None
        )
        self._open: list[_Episode] = []
        self._loose_reaches: list[Presence] = []
        self._loose_changes: list[WeightChange] = []
        self._history: dict[int, list[float]] = {}
        self._activity: list[float] = []
        self._next_id = 0

    def add_presence(self, p: Presence) -> None:
        """A closed presence episode from the camera."""
        m = self.cfg.margin_s
        if p.zone == BAY_ZONE:
            ep = _Episode(p, p.t_enter - m, p.t_leave + m)
            for r in [r for r in self._loose_reaches if _overlaps(ep, r.t_enter, r.t_leave)]:
                ep.reaches.append(r)
                self._loose_reaches.remove(r)
            for c in [c for c in self._loose_changes if ep.start <= c.t_start <= ep.end]:
                ep.changes.append(c)
                self._loose_changes.remove(c)
            self._open.append(ep)
            bisect.insort(self._activity, p.t_enter)
            return
        ep_match = self._episode_at(p.t_enter, p.t_leave)
        if ep_match is not None:
            ep_match.reaches.append(p)
        else:
            self._loose_reaches.append(p)

    def add_change(self, c: WeightChange) -> None:
        """A settled weight change from the signal path."""
        ep = self._episode_at(c.t_start, c.t_start)
        if ep is not None:
            ep.changes.append(c)
        else:
            self._loose_changes.append(c)

    def _episode_at(self, t0: float, t1: float) -> _Episode | None:
        best, best_overlap = None, -1.0
        for ep in self._open:
            if _overlaps(ep, t0, t1):
                ov = min(ep.end, t1) - max(ep.start, t0)
                if ov > best_overlap:
                    best, best_overlap = ep, ov
        return best

    def ready(self, now: float, *, occupied_since: float | None = None) -> list[EventWindow]:
        """Windows nothing more can join at time ``now`` (in time order).

        ``occupied_since`` is when the bay presence still in progress began (the
        camera knows); changes from then on wait for that presence to close.
        """
        hold = self.cfg.hold_s
        done = [ep for ep in self._open if ep.end + hold <= now]
        held = float("inf") if occupied_since is None else occupied_since - self.cfg.margin_s
        loose = [
            c
            for c in self._loose_changes
            if c.t_settled + hold + self.cfg.margin_s <= now and c.t_start < held
        ]
        for c in loose:
            self._loose_changes.remove(c)
            done.append(_Episode(None, c.t_start, c.t_settled, changes=[c]))
        self._open = [ep for ep in self._open if ep not in done]
        self._loose_reaches = [
            r
            for r in self._loose_reaches
            if r.t_leave + hold + self.cfg.margin_s > now or r.t_enter >= held
        ]
        for c in loose:
            bisect.insort(self._activity, c.t_start)
        done.sort(key=lambda e: e.start)
        return [self._window(ep) for ep in done]

    def pending_slots(self) -> set[int]:
        """Slots with a change that no decided window has taken yet."""
        out = {c.slot for c in self._loose_changes}
        for ep in self._open:
            out.update(c.slot for c in ep.changes)
        return out

    def flush(self) -> list[EventWindow]:
        """Every window still open (end of a stream)."""
        return self.ready(float("inf"))

    def _window(self, ep: _Episode) -> EventWindow:
        changes = sorted(ep.changes, key=lambda c: c.t_start)
        slots: dict[int, SlotContext] = {}
        for c in changes:
            if c.slot not in slots:
                slots[c.slot] = self._context(c.slot, changes[0].t_start)
        for c in changes:
            self._history.setdefault(c.slot, []).append(c.t_start)
            if self.units is not None and c.slot in self.units:
                self.units[c.slot] = max(0, self.units[c.slot] + c.units)
        start = ep.presence.t_enter if ep.presence else ep.start
        end = ep.presence.t_leave if ep.presence else ep.end
        ns = self.cfg.neighbour_s
        lo = bisect.bisect_left(self._activity, start - ns)
        hi = bisect.bisect_right(self._activity, end)
        neighbours = max(0, hi - lo - 1)
        self._next_id += 1
        return EventWindow(
            bay=self.bay,
            episode=self._next_id,
            t_start=start,
            t_end=end,
            hour=int((self.cfg.day_offset_s + start) // 3600) % 24,
            presence=ep.presence,
            reaches=tuple(sorted(ep.reaches, key=lambda r: r.t_enter)),
            changes=tuple(changes),
            slots=slots,
            neighbours=neighbours,
        )

    def _context(self, slot: int, t: float) -> SlotContext:
        past = [x for x in self._history.get(slot, []) if x < t]
        recent = [x for x in past if x >= t - self.cfg.lookback_s]
        return SlotContext(
            slot=slot,
            unit_grams=self.unit_grams.get(slot, 0.0),
            recent_changes=len(recent),
            since_last_s=(t - past[-1]) if past else None,
            stock_units=None if self.units is None else self.units.get(slot),
        )


def _overlaps(ep: _Episode, t0: float, t1: float) -> bool:
    return t0 <= ep.end and t1 >= ep.start


def build_windows(
    bay: str,
    presences: Iterable[Presence],
    changes: Iterable[WeightChange],
    unit_grams: Mapping[int, float],
    *,
    config: WindowConfig | None = None,
    initial_units: Mapping[int, int] | None = None,
) -> list[EventWindow]:
    """Group a finished stream: values fed in the order they would have arrived."""
    w = Windower(bay, unit_grams, config=config, initial_units=initial_units)
    presences = list(presences)
    bay_spans = sorted((p.t_enter, p.t_leave) for p in presences if p.zone == BAY_ZONE)
    starts = [a for a, _ in bay_spans]

    def occupied(t: float) -> float | None:
        i = bisect.bisect_right(starts, t) - 1
        return bay_spans[i][0] if i >= 0 and bay_spans[i][1] >= t else None

    events: list[tuple[float, int, Presence | WeightChange]] = []
    events += [(p.t_leave, 0, p) for p in presences]
    events += [(c.t_settled, 1, c) for c in changes]
    events.sort(key=lambda e: (e[0], e[1]))
    out: list[EventWindow] = []
    for t, _, v in events:
        out += w.ready(t, occupied_since=occupied(t))
        if isinstance(v, Presence):
            w.add_presence(v)
        else:
            w.add_change(v)
    out += w.flush()
    return out


def windows_in_order(windows: Sequence[EventWindow]) -> list[EventWindow]:
    """Windows sorted by start time."""
    return sorted(windows, key=lambda w: w.t_start)
