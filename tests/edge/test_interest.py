"""Interest attribution: every slot handled or reached, else the bay."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.interest import ATTRIBUTIONS, concerns, zone_slot
from models.types import Presence, WeightChange
from models.window import EventWindow

BAY = Presence("bay", 0.0, 30.0, 30.0, 0.5, 0)


def test_zone_names_map_to_slots() -> None:
    assert [zone_slot(z) for z in ("slot-0", "slot-12", "slot-63", "slot-64", "bay", "slot-x")] == [
        0,
        12,
        63,
        None,
        None,
        None,
    ]


@given(
    st.lists(st.tuples(st.integers(0, 9), st.floats(0, 5)), max_size=5),
    st.lists(st.tuples(st.integers(0, 9), st.integers(-3, 3)), max_size=5),
    st.sets(st.integers(0, 9)),
)
def test_each_concerned_slot_once_handled_before_reach_else_the_bay(
    reaches: list, changes: list, known: set[int]
) -> None:
    w = EventWindow(
        "bay-1",
        1,
        0.0,
        30.0,
        10,
        BAY,
        tuple(Presence(f"slot-{s}", 1.0, 1.0 + d, d, 0.5, 0) for s, d in reaches),
        tuple(WeightChange(s, 50.0 * u, u, 2.0, 3.0, 0.9) for s, u in changes),
    )
    got = concerns(w, known)
    handled = {s for s, _ in changes}
    reached = {s for s, _ in reaches if not known or s in known} - handled
    if not handled | reached:
        assert [(c.slot, c.attribution) for c in got] == [(None, "bay")]
        return
    assert [c.slot for c in got] == sorted(handled | reached)
    assert all(c.attribution in ATTRIBUTIONS for c in got)
    assert {c.slot for c in got if c.attribution == "handled"} == handled
    assert {c.slot for c in got if c.attribution == "reach"} == reached
    assert all(c.reach_dwell >= 0 for c in got)
