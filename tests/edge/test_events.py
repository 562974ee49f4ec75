"""From a decided window to ShelfEvent fields: every event valid, stock booked, levels raised."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import SlotConfig
from edge.events import Origin, WindowDecision, window_events
from edge.stock import StockBook
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext
from models.wire import ShelfEvent

WALL = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ORIGIN = Origin("store-1", "bay-1", {0: "GUM-50", 1: "RICE-1000"}, "rules", None)


def slots() -> list[SlotConfig]:
    return [
        SlotConfig.model_validate(
            {"slot": n, "channel": n, "sku": sku, "unit_grams": g, "capacity": 10, "low_units": 3}
        )
        for n, sku, g in ((0, "GUM-50", 50.0), (1, "RICE-1000", 1000.0))
    ]


def window(changes: list[WeightChange], *, presence: bool = True) -> EventWindow:
    p = Presence("bay", 10.0, 20.0, 10.0, 0.6, 0) if presence else None
    reach = (Presence("slot-0", 12.0, 14.0, 2.0, 0.8, 0),) if presence else ()
    return EventWindow(
        bay="bay-1",
        episode=7,
        t_start=10.0,
        t_end=20.0,
        hour=14,
        presence=p,
        reaches=reach,
        changes=tuple(changes),
        slots={0: SlotContext(0, 50.0, 1, 30.0, 5), 1: SlotContext(1, 1000.0)},
        neighbours=1,
    )


def full(fields: dict) -> ShelfEvent:
    return ShelfEvent.model_validate({**fields, "device_id": "unit-1", "seq": 1})


def test_take_window_gives_interest_stock_and_level_events() -> None:
    book = StockBook(slots(), {0: 5, 1: 6})
    w = window([WeightChange(0, -101.0, -2, 12.5, 14.0, 0.92)])
    d = WindowDecision("take", 0.5, (("removal", 0.92),))
    out = [full(f) for f in window_events(w, d, book, ORIGIN, wall_time=WALL)]
    assert [(e.kind, e.label) for e in out] == [
        ("interest", "take"),
        ("stock", "removal"),
        ("level", "low"),
    ]
    interest, stock, level = out
    assert interest.dwell_s == 10.0 and interest.mono_time == 20.0
    assert (interest.slot, interest.sku, interest.features["attribution"]) == (
        0,
        "GUM-50",
        "handled",
    )
    assert interest.features["reaches"] == 1 and interest.features["net_units"] == -2
    assert (stock.slot, stock.sku, stock.units, stock.grams) == (0, "GUM-50", -2, -101.0)
    assert stock.stock_units == 3 and stock.mono_time == 14.0 and stock.confidence == 0.92
    assert stock.features["reach"] is True and stock.features["fit"] == pytest.approx(0.02)
    assert level.stock_units == 3 and level.features == {"previous": "ok"}
    assert {e.episode for e in out} == {7}
    assert all(e.decided_by == "rules" and e.model_version is None for e in out)
    assert all(e.wall_time == WALL for e in out)
    assert book.units == {0: 3, 1: 6}


def test_the_first_event_carries_the_window_for_training() -> None:
    book = StockBook(slots(), {0: 5, 1: 6})
    for w, d in (
        (
            window([WeightChange(0, -101.0, -2, 12.5, 14.0, 0.92)]),
            WindowDecision("take", 0.5, (("removal", 0.9),)),
        ),
        (
            window([WeightChange(1, 8.0, 0, 1.0, 3.0, 0.2)], presence=False),
            WindowDecision(None, 0.0, (("sensor_fault", 0.8),)),
        ),
    ):
        first, *rest = [full(f) for f in window_events(w, d, book, ORIGIN, wall_time=WALL)]
        assert first.window is not None and all(e.window is None for e in rest)
        assert EventWindow.from_dict(first.window.model_dump()) == w


def test_nobody_there_gives_no_interest_and_model_origin_is_carried() -> None:
    book = StockBook(slots(), {0: 5, 1: 6})
    w = window([WeightChange(1, 8.0, 0, 1.0, 3.0, 0.2)], presence=False)
    origin = Origin("store-1", "bay-1", ORIGIN.skus, "model", 12)
    d = WindowDecision(None, 0.0, (("sensor_fault", 0.81),))
    out = [full(f) for f in window_events(w, d, book, origin, wall_time=WALL)]
    assert [(e.kind, e.label) for e in out] == [("stock", "sensor_fault")]
    assert out[0].decided_by == "model" and out[0].model_version == 12
    assert book.units == {0: 5, 1: 6}


def test_label_count_must_match_changes() -> None:
    with pytest.raises(ValueError, match="stock labels"):
        window_events(
            window([]), WindowDecision("glance", 0.5, (("none", 1.0),)), StockBook(slots()), ORIGIN
        )


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1]),
            st.floats(-5000, 5000, allow_nan=False),
            st.sampled_from(["none", "removal", "return", "misplaced", "restock", "sensor_fault"]),
            st.floats(0, 1),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_every_event_is_a_valid_shelf_event(items: list, presence: bool) -> None:
    book = StockBook(slots(), {0: 4, 1: 4})
    changes = [
        WeightChange(s, g, round(g / (50.0 if s == 0 else 1000.0)), 11.0 + i, 12.0 + i, c)
        for i, (s, g, _, c) in enumerate(items)
    ]
    d = WindowDecision(
        "browse" if presence else None, 0.7, tuple((lab, c) for _, _, lab, c in items)
    )
    out = [full(f) for f in window_events(window(changes, presence=presence), d, book, ORIGIN)]
    assert sum(e.kind == "stock" for e in out) == len(items)
    concerned = {s for s, *_ in items} | {0}  # the window's reach is on slot 0
    interest = [e for e in out if e.kind == "interest"]
    assert [e.slot for e in interest] == (sorted(concerned) if presence else [])
    assert all(e.label == "browse" and e.sku == ORIGIN.skus[e.slot] for e in interest if e.slot)
    assert all(len(e.features) <= 64 for e in out)
    assert all(v >= 0 for v in book.units.values())


def test_interest_goes_to_each_slot_handled_or_reached_and_to_the_bay_without_either() -> None:
    book = StockBook(slots(), {0: 5, 1: 6})
    p = Presence("bay", 10.0, 20.0, 10.0, 0.6, 0)

    def interest(reaches: tuple[Presence, ...], changes: list[WeightChange]) -> list[tuple]:
        w = EventWindow("bay-1", 3, 10.0, 20.0, 14, p, reaches, tuple(changes), {}, 0)
        d = WindowDecision("touch", 0.8, tuple(("none", 0.9) for _ in changes))
        evs = [full(f) for f in window_events(w, d, book, ORIGIN, wall_time=WALL)]
        return [
            (e.slot, e.sku, e.features["attribution"], e.features["slot_reach_dwell"])
            for e in evs
            if e.kind == "interest"
        ]

    # a 0-unit change (picked up, put back) on slot 1, a reach into slot 0
    assert interest(
        (Presence("slot-0", 12.0, 13.5, 1.5, 0.8, 0),), [WeightChange(1, 3.0, 0, 14.0, 15.0, 0.7)]
    ) == [(0, "GUM-50", "reach", 1.5), (1, "RICE-1000", "handled", 0.0)]
    # a glance: the bay; a zone over a slot the unit does not have is not a SKU
    assert interest((), []) == [(None, None, "bay", 0.0)]
    assert interest((Presence("slot-9", 12.0, 13.0, 1.0, 0.5, 0),), []) == [
        (None, None, "bay", 0.0)
    ]


def test_guarded_stock_says_the_rules_decided_and_interest_carries_shoppers() -> None:
    book = StockBook(slots(), {0: 5, 1: 6})
    two = Presence("bay", 10.0, 20.0, 10.0, 0.6, 2)  # the bay emptied and filled again
    w = window([WeightChange(0, -101.0, -2, 12.5, 14.0, 0.92)])
    w = EventWindow(
        w.bay, w.episode, w.t_start, w.t_end, w.hour, two, w.reaches, w.changes, w.slots
    )
    model = Origin("store-1", "bay-1", {0: "GUM-50", 1: "RICE-1000"}, "model", 4)
    d = WindowDecision("take", 0.8, (("removal", 0.92),), "model", "rules")
    out = [full(f) for f in window_events(w, d, book, model, wall_time=WALL)]
    assert [(e.kind, e.decided_by) for e in out] == [
        ("interest", "model"),
        ("stock", "rules"),
        ("level", "rules"),
    ]
    assert all(e.model_version == 4 for e in out)
    assert out[0].shoppers == 2 and out[0].features["shoppers_seen"] == 2
    assert out[1].shoppers is None
    plain = WindowDecision("take", 0.8, (("removal", 0.92),))
    again = window_events(w, plain, StockBook(slots(), {0: 5, 1: 6}), model, wall_time=WALL)
    assert {f["decided_by"] for f in again} == {"model"}


@given(st.integers(-5, 10_000))
def test_shoppers_on_the_wire_are_bounded_and_only_on_interest(n: int) -> None:
    base = window_events(
        window([]),
        WindowDecision("glance", 0.5, ()),
        StockBook(slots(), {}),
        ORIGIN,
        wall_time=WALL,
    )[0]
    ok = 0 <= n <= 20
    if ok:
        assert full({**base, "shoppers": n}).shoppers == n
    else:
        with pytest.raises(ValueError, match="shoppers"):
            full({**base, "shoppers": n})
    stock = {**base, "kind": "stock", "label": "removal", "shoppers": 1}
    with pytest.raises(ValueError, match="shoppers is for interest events"):
        full(stock)
