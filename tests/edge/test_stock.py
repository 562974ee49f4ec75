"""Stock on the unit: units per slot from decided changes, levels from config thresholds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.config import SlotConfig
from edge.stock import StockBook


def slot(n: int, *, capacity: int = 10, low: int = 3) -> SlotConfig:
    return SlotConfig.model_validate(
        {
            "slot": n,
            "channel": n,
            "sku": f"SKU-{n}",
            "unit_grams": 100.0,
            "capacity": capacity,
            "low_units": low,
        }
    )


def test_starts_at_capacity_or_given_units() -> None:
    book = StockBook([slot(0), slot(1, capacity=6)], {1: 2})
    assert book.units == {0: 10, 1: 2}
    assert book.levels() == {0: "ok", 1: "low"}


def test_removal_then_low_then_out_then_restock_back_to_ok() -> None:
    book = StockBook([slot(0)], {0: 5})
    first = book.apply(0, "removal", -2)
    assert (first.units, first.moved) == (3, -2)
    assert first.level is not None and (first.level.previous, first.level.level) == ("ok", "low")
    out = book.apply(0, "removal", -3)
    assert out.units == 0 and out.level is not None and out.level.level == "out"
    back = book.apply(0, "restock", 8)
    assert back.units == 8 and back.level is not None and back.level.level == "ok"
    assert back.level.sku == "SKU-0"


def test_labels_that_do_not_move_own_stock() -> None:
    book = StockBook([slot(0)], {0: 5})
    for label in ("none", "misplaced", "sensor_fault"):
        upd = book.apply(0, label, 1)
        assert upd.moved == 0 and upd.level is None
    assert book.units[0] == 5
    assert book.apply(7, "removal", -1).moved == 0  # a slot the bay does not have


def test_count_never_goes_below_zero_and_says_how_much_it_clamped() -> None:
    book = StockBook([slot(0)], {0: 1})
    upd = book.apply(0, "removal", -3)
    assert upd.units == 0 and upd.moved == -1
    assert book.clamped == 2


def test_round_trip_through_plain_data() -> None:
    slots = [slot(0), slot(1)]
    book = StockBook(slots, {0: 4, 1: 9})
    book.apply(1, "removal", -2)
    again = StockBook.from_dict(slots, book.to_dict())
    assert again.units == book.units


@given(
    start=st.integers(0, 30),
    moves=st.lists(
        st.tuples(
            st.sampled_from(["removal", "return", "restock", "none", "misplaced"]),
            st.integers(-5, 5),
        ),
        max_size=40,
    ),
)
def test_levels_always_follow_the_count(start: int, moves: list[tuple[str, int]]) -> None:
    book = StockBook([slot(0, capacity=30, low=3)], {0: start})
    level = book.level(0)
    for label, units in moves:
        upd = book.apply(0, label, units)
        assert upd.units >= 0
        want = "out" if upd.units == 0 else "low" if upd.units <= 3 else "ok"
        assert book.level(0) == want
        if upd.level is not None:  # a level event exactly when the level moved
            assert (upd.level.previous, upd.level.level) == (level, want) and level != want
        else:
            assert level == want
        level = want
