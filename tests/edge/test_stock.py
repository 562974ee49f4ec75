"""Stock on the unit: the scale says how many are on a slot, the label says what happened."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.config import SlotConfig
from edge.stock import StockBook
from edge.stock_config import StockConfig
from models.labels import STOCK_LABELS

UG = 100.0


def slot(n: int, *, capacity: int = 10, low: int = 3) -> SlotConfig:
    return SlotConfig.model_validate(
        {
            "slot": n,
            "channel": n,
            "sku": f"SKU-{n}",
            "unit_grams": UG,
            "capacity": capacity,
            "low_units": low,
        }
    )


def test_unknown_until_the_scale_says_or_a_count_is_given() -> None:
    book = StockBook([slot(0), slot(1, capacity=6)], {1: 2})
    assert book.units == {0: None, 1: 2}
    assert book.levels() == {0: None, 1: "low"}
    first = book.observe(0, 7 * UG + 12.0)
    assert first.units == 7 and first.level is None  # the first figure is no level change
    assert book.levels() == {0: "ok", 1: "low"}


def test_a_plus_six_change_is_six_more_units_whatever_the_label() -> None:
    book = StockBook([slot(0, capacity=12)], {0: 6})
    upd = book.apply(0, "removal", 6, grams=6 * UG, level_g=12 * UG)
    assert (upd.units, upd.moved) == (12, 6)
    # without a load the scale's signed units still move the count, never the label's sign
    blind = StockBook([slot(0, capacity=12)], {0: 6})
    assert blind.apply(0, "removal", 6, grams=6 * UG).units == 12
    assert blind.apply(0, "return", -1, grams=-UG).units == 11
    assert blind.apply(0, "none", -2, grams=-2 * UG).units == 9


def test_the_count_is_absolute_not_a_sum_of_deltas() -> None:
    book = StockBook([slot(0)], {0: 9})  # a wrong starting figure
    upd = book.apply(0, "removal", -1, grams=-UG, level_g=4 * UG + 8.0)
    assert upd.units == 4  # the load holds four units, whatever was believed before
    assert book.apply(0, "none", 0, grams=20.0, level_g=4 * UG + 28.0).units == 4


def test_a_misplaced_item_and_its_removal_leave_the_own_count_right() -> None:
    book = StockBook([slot(0)], {0: 5})
    foreign = 330.0  # a jar of another SKU left on the slot
    upd = book.apply(0, "misplaced", 3, grams=foreign, level_g=5 * UG + foreign, t=10.0)
    assert upd.units == 5 and book.features(0)["foreign_g"] == foreign
    upd = book.apply(0, "removal", -2, grams=-2 * UG, level_g=3 * UG + foreign, t=20.0)
    assert upd.units == 3
    # the jar is taken away: the loss fits it, not whole units of the slot's own SKU
    upd = book.apply(0, "removal", -3, grams=-foreign, level_g=3 * UG, t=30.0)
    assert upd.units == 3 and "foreign_g" not in book.features(0)
    # a later removal of own units counts from the load alone
    assert book.apply(0, "removal", -1, grams=-UG, level_g=2 * UG, t=40.0).units == 2


def test_a_foreign_item_never_removed_is_flagged() -> None:
    cfg = StockConfig(foreign_max_s=60.0)
    book = StockBook([slot(0)], {0: 5}, config=cfg)
    book.apply(0, "misplaced", 1, grams=120.0, level_g=5 * UG + 120.0, t=0.0)
    assert book.flags() == {}
    upd = book.observe(0, 5 * UG + 120.0, t=61.0)
    assert upd.flags == ("foreign_unremoved",) and upd.units == 5
    assert book.features(0)["flags"] == "foreign_unremoved"
    book.recount(0, 5)
    assert book.flags() == {} and book.observe(0, 5 * UG + 120.0, t=70.0).units == 5


def test_a_sensor_fault_moves_no_stock_and_its_undoing_neither() -> None:
    book = StockBook([slot(0)], {0: 5})
    assert book.apply(0, "sensor_fault", 2, grams=180.0, level_g=5 * UG + 180.0).units == 5
    assert book.apply(0, "removal", -1, grams=-UG, level_g=4 * UG + 180.0).units == 4
    assert book.apply(0, "sensor_fault", -2, grams=-180.0, level_g=4 * UG).units == 4


def test_implausible_loads_are_flagged_not_hidden() -> None:
    book = StockBook([slot(0, capacity=10)])
    upd = book.observe(0, -3 * UG)  # a tare taken with three units on the slot
    assert upd.units == 0 and upd.flags == ("below_tare",)
    upd = book.apply(0, "restock", 43, grams=43 * UG, level_g=40 * UG)  # calibration far off
    assert upd.units == 40 and upd.flags == ("above_capacity",)
    assert book.apply(0, "removal", -32, grams=-32 * UG, level_g=8 * UG).flags == ()
    # a report keeps the count but refreshes the flags
    assert book.observe(0, -2 * UG, t=5.0).flags == ("below_tare",) and book.units[0] == 8


def test_a_recount_resets_the_slot_from_the_staff_figure() -> None:
    book = StockBook([slot(0)], {0: 5})
    book.apply(0, "misplaced", 2, grams=150.0, level_g=5 * UG + 150.0, t=1.0)
    upd = book.recount(0, 7)  # staff found seven (the 'foreign' item was one of ours)
    assert upd.units == 7 and upd.moved == 2 and book.features(0).get("foreign_g") is None
    # the next change counts from the staff's figure
    assert book.apply(0, "removal", -1, grams=-UG, level_g=4 * UG + 150.0).units == 6


def test_counts_move_only_beyond_half_a_unit_and_the_band() -> None:
    book = StockBook([slot(0)])
    assert book.observe(0, 4.6 * UG).units == 5
    assert book.apply(0, "none", 0, grams=-20.0, level_g=4.4 * UG).units == 5  # in the band
    assert book.apply(0, "none", 0, grams=-10.0, level_g=4.3 * UG).units == 4


def test_reports_count_slots_not_yet_counted_and_leave_counted_ones() -> None:
    book = StockBook([slot(0), slot(1)], {0: 9})  # slot 0 read back from disk
    assert book.observe(0, 7 * UG).units == 7  # things moved while the unit was off
    assert book.observe(1, 3 * UG).units == 3
    assert book.observe(0, 8 * UG, t=900.0).units == 7  # drift never moves a counted slot
    assert book.apply(0, "return", 1, grams=UG, level_g=8 * UG, t=901.0).units == 8


def test_a_whole_unit_change_always_moves_the_count_to_the_load() -> None:
    book = StockBook([slot(0)])
    assert book.observe(0, 2.36 * UG).units == 2  # a foreign residue of a third of a unit
    assert book.apply(0, "removal", -1, grams=-UG, level_g=1.36 * UG).units == 1
    assert book.apply(0, "none", 0, grams=-30.0, level_g=1.06 * UG).units == 1


def test_levels_have_hysteresis_out_at_zero_low_until_above_low_plus_margin() -> None:
    book = StockBook([slot(0, low=3)], {0: 5})
    seen = []
    before = 5
    for n in (3, 0, 1, 4, 5, 4):
        d = n - before
        upd = book.apply(0, "removal" if d < 0 else "return", d, grams=d * UG, level_g=n * UG)
        seen.append((n, book.level(0), upd.level is not None))
        before = n
    assert seen == [
        (3, "low", True),
        (0, "out", True),
        (1, "low", True),
        (4, "low", False),  # within low + 1: still low
        (5, "ok", True),
        (4, "ok", False),  # from above: ok until at or below low
    ]


def test_round_trip_through_plain_data_and_the_older_format() -> None:
    slots = [slot(0), slot(1)]
    book = StockBook(slots, {0: 4})
    book.apply(1, "misplaced", 1, grams=90.0, level_g=6 * UG + 90.0, t=3.0)
    again = StockBook.from_dict(slots, book.to_dict())
    assert again.units == book.units and again.features(1) == book.features(1)
    old = StockBook.from_dict(slots, {"units": {"0": 4, "1": 9, "7": 3}})
    assert old.units == {0: 4, 1: 9}


@given(
    start=st.integers(0, 30),
    moves=st.lists(
        st.tuples(st.sampled_from(STOCK_LABELS), st.integers(-5, 5), st.floats(-0.3, 0.3)),
        max_size=40,
    ),
)
def test_own_stock_labels_count_what_the_load_holds(
    start: int, moves: list[tuple[str, int, float]]
) -> None:
    """Whatever the labels, own-stock changes leave the count the load holds, levels following."""
    book = StockBook([slot(0, capacity=30, low=3)], {0: start})
    truth = start
    for label, units, noise in moves:
        if label in ("misplaced", "sensor_fault"):
            continue  # weight the label says is not stock: covered above
        truth = max(0, truth + units)
        upd = book.apply(0, label, units, grams=units * UG, level_g=(truth + noise) * UG)
        assert upd.units == truth
        want_floor = "out" if truth == 0 else "low" if truth <= 3 else None
        if want_floor is not None:
            assert book.level(0) == want_floor
        elif truth > 4:
            assert book.level(0) == "ok"
