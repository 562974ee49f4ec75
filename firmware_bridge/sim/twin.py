"""The store twin: plans who comes to the bay, what they do and what the shelf feels.

:meth:`StoreTwin.simulate` walks a seeded timeline of shopper arrivals and staff
restock rounds, picks each shopper's intent from the scenario's mix and turns it
into ground truth: :class:`~firmware_bridge.sim.truth.Episode` s, the camera
:class:`~firmware_bridge.sim.truth.ZoneVisit` s, the stock
:class:`~firmware_bridge.sim.truth.TruthChange` s and the hand
:class:`~firmware_bridge.sim.truth.Handling` s that :mod:`firmware_bridge.sim.loadcell`
turns into raw counts. Stock stays physical: nobody takes from an empty slot, one
hand at a time on a slot, and a slot's load is always tray + own units + misplaced
items.

Touch semantics: a unit lifted and put straight back (hand never leaves the shelf)
is one handling and no stock change; a unit carried away and brought back later is
two handlings and two changes (``removal`` then ``return``) because the shelf sat
steady without it in between. A ``misplace`` shopper takes a unit from one slot
(``removal``) and later leaves it on another (``misplaced``, ``sku`` naming the
foreign unit); the episode's shelf-interest label is ``touch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.sim.scenario import Scenario
from firmware_bridge.sim.truth import (
    Episode,
    Handling,
    SensorFault,
    TruthChange,
    ZoneVisit,
)

MIN_GAP_S = 3.0  # hands-off time between two handlings of one slot
MAX_WAIT_S = 10.0  # a shopper waits this long for a slot, else does something else
END_MARGIN_S = 5.0  # nothing touches the shelf this close to the end of a run


@dataclass
class SimRun:
    """The planned timeline of one simulated run: ground truth and the physics plan."""

    scenario: str
    seed: int
    duration_s: float
    episodes: list[Episode] = field(default_factory=list)
    visits: list[ZoneVisit] = field(default_factory=list)
    changes: list[TruthChange] = field(default_factory=list)
    handlings: list[Handling] = field(default_factory=list)
    faults: list[SensorFault] = field(default_factory=list)
    initial_units: dict[int, int] = field(default_factory=dict)
    final_units: dict[int, int] = field(default_factory=dict)
    initial_grams: dict[int, float] = field(default_factory=dict)


class _Bay:
    """Stock bookkeeping of the bay while the twin plans."""

    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.units = {s.slot: s.initial for s in scenario.slots}
        self.foreign = {s.slot: 0.0 for s in scenario.slots}
        self.free_at = {s.slot: 0.0 for s in scenario.slots}

    def load(self, slot: int) -> float:
        spec = self.sc.slot(slot)
        return self.units[slot] * spec.unit_grams + self.foreign[slot]

    def start_time(self, slot: int, wanted: float) -> float:
        return max(wanted, self.free_at[slot] + MIN_GAP_S)


class StoreTwin:
    """A seeded store twin of one bay; the same scenario and seed plan the same day."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.seed = int(seed)

    def simulate(self, duration_s: float) -> SimRun:
        """Plan ``duration_s`` seconds of the bay: episodes, visits, changes, handlings, faults."""
        if duration_s <= 0:
            raise ValueError("duration_s must be positive")
        sc = self.scenario
        rng = np.random.default_rng([self.seed, 1])
        bay = _Bay(sc)
        run = SimRun(sc.name, self.seed, float(duration_s))
        run.initial_units = dict(bay.units)
        run.initial_grams = {s.slot: bay.load(s.slot) for s in sc.slots}
        arrivals = _poisson_times(rng, sc.traffic.arrivals_per_hour, duration_s)
        rounds = _poisson_times(rng, sc.staff.restocks_per_hour, duration_s)
        timeline = sorted([(t, "shopper") for t in arrivals] + [(t, "staff") for t in rounds])
        planner = _Planner(sc, rng, bay, run)
        for person, (t, actor) in enumerate(timeline):
            if actor == "staff":
                planner.restock(person, t)
            else:
                planner.shopper(person, t)
        run.faults, fault_changes = _plan_faults(sc, rng, duration_s)
        run.changes.extend(fault_changes)
        run.episodes.sort(key=lambda e: e.t_enter)
        run.visits.sort(key=lambda v: v.t_enter)
        run.changes.sort(key=lambda c: c.t_start)
        run.handlings.sort(key=lambda h: h.t_start)
        run.final_units = dict(bay.units)
        return run


def _poisson_times(rng: np.random.Generator, per_hour: float, duration_s: float) -> list[float]:
    if per_hour <= 0:
        return []
    n = int(rng.poisson(per_hour * duration_s / 3600.0))
    return sorted(float(t) for t in rng.uniform(0, duration_s, n))


class _Planner:
    """Turns one arrival into an episode with its handlings and truth."""

    def __init__(self, sc: Scenario, rng: np.random.Generator, bay: _Bay, run: SimRun) -> None:
        self.sc, self.rng, self.bay, self.run = sc, rng, bay, run
        names = list(sc.traffic.intent_mix)
        weights = np.array([sc.traffic.intent_mix[n] for n in names], dtype=float)
        self.intent_names, self.intent_p = names, weights / weights.sum()
        self.slot_ids = [s.slot for s in sc.slots]

    def _u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def _handle(
        self, person: int, slot: int, t0: float, net: list[float], *, staff: bool = False
    ) -> Handling:
        """Plan one hand on ``slot`` from ``t0`` whose steps are ``net`` (grams each)."""
        lo, hi = self.sc.traffic.handling_s
        dur = self._u(lo, hi) + (0.6 * len(net) if staff else 0.0)
        # steps in the middle of the handling, in order, never at its very edges
        fr = np.sort(self.rng.uniform(0.2, 0.8, len(net)))
        steps = tuple((t0 + float(f) * dur, g) for f, g in zip(fr, net, strict=True))
        plo, phi = self.sc.traffic.press_grams
        h = Handling(slot, person, t0, t0 + dur, self.bay.load(slot), steps, self._u(plo, phi))
        self.bay.free_at[slot] = h.t_end
        self.run.handlings.append(h)
        return h

    def _slot_visit(self, person: int, h: Handling, intent: str) -> None:
        self.run.visits.append(
            ZoneVisit(
                person, f"slot-{h.slot}", h.t_start - 0.3, h.t_end + 0.3, self._u(0.5, 0.9), intent
            )
        )

    def _pick(self, t: float, *, need_units: bool, exclude: int | None = None) -> int | None:
        order = [int(s) for s in self.rng.permutation(self.slot_ids)]
        for s in order:
            if s == exclude or (need_units and self.bay.units[s] < 1):
                continue
            if self.bay.start_time(s, t) - t <= MAX_WAIT_S:
                return s
        return None

    def shopper(self, person: int, t: float) -> None:
        intent = str(self.rng.choice(self.intent_names, p=self.intent_p))
        t_reach = t + self._u(1.0, 3.0)
        late = t > self.run.duration_s - 90.0
        if intent in ("touch", "take", "misplace"):
            slot = None if late else self._pick(t_reach, need_units=True)
            if slot is not None:
                getattr(self, f"_{intent}")(person, t, t_reach, slot)
                return
            intent = "browse"
        self._look(person, t, intent)

    def _look(self, person: int, t: float, intent: str) -> None:
        """pass_by / glance / browse: no weight on any slot changes."""
        dur = {"pass_by": (1.0, 3.0), "glance": (2.0, 6.0), "browse": (8.0, 30.0)}[intent]
        motion = {"pass_by": (0.7, 1.0), "glance": (0.1, 0.3), "browse": (0.3, 0.6)}[intent]
        t_leave = min(t + self._u(*dur), self.run.duration_s)
        if intent == "browse":
            for _ in range(int(self.rng.integers(0, 3))):
                a = self._u(t, t_leave)
                b = min(a + self._u(0.5, 2.0), t_leave)
                slot = int(self.rng.choice(self.slot_ids))
                self.run.visits.append(
                    ZoneVisit(person, f"slot-{slot}", a, b, self._u(0.2, 0.4), intent)
                )
        self.run.visits.append(ZoneVisit(person, "bay", t, t_leave, self._u(*motion), intent))
        self.run.episodes.append(Episode(person, "shopper", t, t_leave, intent, None))

    def _finish(
        self,
        person: int,
        t: float,
        intent: str,
        slot: int,
        hs: list[Handling],
        changes: list[TruthChange],
    ) -> None:
        t_leave = max(h.t_end for h in hs) + self._u(0.5, 2.0)
        self.run.visits.append(ZoneVisit(person, "bay", t, t_leave, self._u(0.3, 0.7), intent))
        for h in hs:
            self._slot_visit(person, h, intent)
        self.run.changes.extend(changes)
        self.run.episodes.append(
            Episode(person, "shopper", t, t_leave, intent, slot, tuple(changes))
        )

    def _take(self, person: int, t: float, t_reach: float, slot: int) -> None:
        spec = self.sc.slot(slot)
        n = int(self.rng.integers(1, min(self.sc.traffic.max_take_units, self.bay.units[slot]) + 1))
        h = self._handle(person, slot, self.bay.start_time(slot, t_reach), [-spec.unit_grams] * n)
        self.bay.units[slot] -= n
        ch = TruthChange(
            slot, h.t_start, h.t_end, -n * spec.unit_grams, -n, "removal", person, spec.sku
        )
        self._finish(person, t, "take", slot, [h], [ch])

    def _touch(self, person: int, t: float, t_reach: float, slot: int) -> None:
        spec = self.sc.slot(slot)
        u = spec.unit_grams
        t0 = self.bay.start_time(slot, t_reach)
        if self.rng.random() >= self.sc.traffic.long_hold_fraction:
            h = self._handle(person, slot, t0, [-u, u])
            self._finish(person, t, "touch", slot, [h], [])
            return
        h1 = self._handle(person, slot, t0, [-u])
        self.bay.units[slot] -= 1
        h2 = self._handle(person, slot, h1.t_end + self._u(6.0, 25.0), [u])
        self.bay.units[slot] += 1
        changes = [
            TruthChange(slot, h1.t_start, h1.t_end, -u, -1, "removal", person, spec.sku),
            TruthChange(slot, h2.t_start, h2.t_end, u, 1, "return", person, spec.sku),
        ]
        self._finish(person, t, "touch", slot, [h1, h2], changes)

    def _misplace(self, person: int, t: float, t_reach: float, slot: int) -> None:
        spec = self.sc.slot(slot)
        u = spec.unit_grams
        h1 = self._handle(person, slot, self.bay.start_time(slot, t_reach), [-u])
        self.bay.units[slot] -= 1
        changes = [TruthChange(slot, h1.t_start, h1.t_end, -u, -1, "removal", person, spec.sku)]
        hs = [h1]
        other = self._pick(h1.t_end + 5.0, need_units=False, exclude=slot)
        if other is None:  # keeps it after all
            self._finish(person, t, "take", slot, hs, changes)
            return
        h2 = self._handle(
            person, other, self.bay.start_time(other, h1.t_end + self._u(5.0, 20.0)), [u]
        )
        self.bay.foreign[other] += u
        hs.append(h2)
        changes.append(
            TruthChange(other, h2.t_start, h2.t_end, u, 1, "misplaced", person, spec.sku)
        )
        self._finish(person, t, "touch", slot, hs, changes)

    def restock(self, person: int, t: float) -> None:
        """A staff round: top up every slot below the threshold, one after another."""
        if t > self.run.duration_s - 120.0:
            return
        low = [
            s
            for s in self.sc.slots
            if self.bay.units[s.slot] < self.sc.staff.restock_below * s.capacity
        ]
        hs: list[Handling] = []
        changes: list[TruthChange] = []
        cursor = t + self._u(2.0, 5.0)
        for s in low:
            n = s.capacity - self.bay.units[s.slot]
            start = self.bay.start_time(s.slot, cursor)
            if start + self.sc.traffic.handling_s[1] + 0.6 * n > self.run.duration_s - END_MARGIN_S:
                break  # the round ends with the run
            h = self._handle(person, s.slot, start, [s.unit_grams] * n, staff=True)
            self.bay.units[s.slot] += n
            changes.append(
                TruthChange(
                    s.slot, h.t_start, h.t_end, n * s.unit_grams, n, "restock", person, s.sku
                )
            )
            hs.append(h)
            cursor = h.t_end + self._u(1.0, 3.0)
        if not hs:
            return
        t_leave = max(h.t_end for h in hs) + self._u(1.0, 3.0)
        self.run.visits.append(ZoneVisit(person, "bay", t, t_leave, self._u(0.4, 0.8), "restock"))
        for h in hs:
            self._slot_visit(person, h, "restock")
        self.run.changes.extend(changes)
        slot = hs[0].slot if len(hs) == 1 else None
        self.run.episodes.append(
            Episode(person, "staff", t, t_leave, "restock", slot, tuple(changes))
        )


def _plan_faults(
    sc: Scenario, rng: np.random.Generator, duration_s: float
) -> tuple[list[SensorFault], list[TruthChange]]:
    f = sc.faults
    faults: list[SensorFault] = []
    for kind, rate in (
        ("stuck", f.stuck_per_hour),
        ("offset_jump", f.offset_jump_per_hour),
        ("disconnect", f.disconnect_per_hour),
    ):
        for t in _poisson_times(rng, rate, duration_s - END_MARGIN_S):
            spec = sc.slots[int(rng.integers(len(sc.slots)))]
            if kind == "offset_jump":
                grams = float(rng.choice([-1.0, 1.0]) * f.offset_jump_grams * rng.uniform(0.5, 1.5))
                faults.append(SensorFault(spec.channel, spec.slot, kind, t, t, grams))
            else:
                end = min(t + float(rng.uniform(*f.duration_s)), duration_s)
                faults.append(SensorFault(spec.channel, spec.slot, kind, t, end))
    faults.sort(key=lambda x: x.t_start)
    changes = [
        TruthChange(x.slot, x.t_start, x.t_end, x.grams, 0, "sensor_fault", None, None)
        for x in faults
    ]
    return faults, changes
