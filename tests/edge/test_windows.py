"""One bay, one episode: grouping presences and weight changes into windows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.windows import WindowConfig, Windower, build_windows
from models.types import Presence, WeightChange

UG = {0: 100.0, 1: 250.0}


def bay(t0: float, t1: float, motion: float = 0.5) -> Presence:
    return Presence("bay", t0, t1, t1 - t0, motion, 1)


def reach(slot: int, t0: float, t1: float) -> Presence:
    return Presence(f"slot-{slot}", t0, t1, t1 - t0, 0.6, 1)


def change(slot: int, t: float, units: int) -> WeightChange:
    return WeightChange(slot, units * UG[slot], units, t, t + 1.0, 0.9)


def test_changes_and_reaches_inside_a_presence_join_its_window() -> None:
    ws = build_windows("b", [bay(10, 20), reach(0, 12, 14)], [change(0, 13, -1)], UG)
    assert len(ws) == 1
    w = ws[0]
    assert w.presence == bay(10, 20)
    assert [r.zone for r in w.reaches] == ["slot-0"]
    assert w.changes == (change(0, 13, -1),)
    assert w.slots[0].unit_grams == 100.0


def test_a_change_with_nobody_there_is_a_window_of_its_own() -> None:
    ws = build_windows("b", [bay(10, 20)], [change(1, 100, 1), change(0, 15, -1)], UG)
    assert [(w.presence is None, len(w.changes)) for w in ws] == [(False, 1), (True, 1)]
    assert ws[1].changes[0].slot == 1


def test_a_change_early_in_a_long_presence_waits_for_it() -> None:
    w = Windower("b", UG)
    w.add_change(change(0, 5, -1))
    # the camera still sees someone since t=3; the change must not leave as an orphan
    assert w.ready(40.0, occupied_since=3.0) == []
    w.add_presence(bay(3, 45))
    assert w.ready(46.0) == []  # still inside hold time
    out = w.ready(60.0)
    assert len(out) == 1 and out[0].presence is not None and len(out[0].changes) == 1


def test_history_level_and_neighbours_are_carried() -> None:
    presences = [bay(0, 5), bay(20, 25), bay(40, 45)]
    changes = [change(0, 1, -1), change(0, 21, -2), change(0, 41, 1)]
    ws = build_windows("b", presences, changes, UG, initial_units={0: 10})
    ctx = [w.slots[0] for w in ws]
    assert [c.recent_changes for c in ctx] == [0, 1, 2]
    assert [c.stock_units for c in ctx] == [10, 9, 7]
    assert ctx[0].since_last_s is None and ctx[1].since_last_s == 20.0
    assert [w.neighbours for w in ws] == [0, 1, 2]  # looking back a minute


def test_hour_follows_the_day_offset() -> None:
    cfg = WindowConfig(day_offset_s=23 * 3600.0)
    ws = build_windows("b", [bay(10, 20), bay(3700, 3710)], [], UG, config=cfg)
    assert [w.hour for w in ws] == [23, 0]


@settings(max_examples=60, deadline=None)
@given(
    spans=st.lists(st.tuples(st.floats(0, 500), st.floats(0.2, 40)), max_size=12),
    chs=st.lists(st.tuples(st.integers(0, 1), st.floats(0, 560), st.integers(-3, 3)), max_size=15),
)
def test_every_change_lands_in_exactly_one_window(spans, chs) -> None:
    presences = [bay(a, a + d) for a, d in spans]
    changes = [change(s, t, u) for s, t, u in chs]
    ws = build_windows("b", presences, changes, UG)
    got = sorted((c.slot, c.t_start) for w in ws for c in w.changes)
    assert got == sorted((c.slot, c.t_start) for c in changes)
    assert sum(w.presence is not None for w in ws) == len(presences)
    assert len({w.episode for w in ws}) == len(ws)
