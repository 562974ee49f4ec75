"""The stock book judges added weight itself: foreign items are never counted as stock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.config import SlotConfig
from edge.events import Origin, WindowDecision, window_events
from edge.stock import StockBook
from edge.stock_config import StockConfig
from models.foreign import Tolerance
from models.physics import allows
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext

TOL = Tolerance()


def slot(n: int, unit: float, *, capacity: int = 40) -> SlotConfig:
    return SlotConfig.model_validate(
        {
            "slot": n,
            "channel": n,
            "sku": f"SKU-{n}",
            "unit_grams": unit,
            "capacity": capacity,
            "low_units": 2,
        }
    )


def bay() -> StockBook:
    # crisps 150 g, wine 1,500 g, cereal 375 g, gum 50 g, chocolate 100 g
    slots = [slot(0, 150.0), slot(1, 1500.0), slot(2, 375.0), slot(3, 50.0), slot(4, 100.0)]
    return StockBook(slots, {0: 6, 1: 4, 2: 5, 3: 10, 4: 8})


def test_an_addition_off_whole_units_booked_as_return_is_a_foreign_item() -> None:
    book = bay()
    upd = book.apply(2, "return", 1, grams=400.3, level_g=5 * 375.0 + 400.3, t=10.0)
    assert (upd.units, upd.label, upd.relabelled, upd.reason) == (5, "misplaced", "return", "fit")
    assert book.features(2)["foreign_g"] == 400.3
    assert upd.label is not None and allows(
        upd.label, 1, 400.3
    )  # the new label is one the physics table allows


def test_a_bottle_moved_onto_the_crisps_slot_is_not_ten_bags() -> None:
    book = bay()
    taken = book.apply(1, "removal", -1, grams=-1499.3, level_g=3 * 1500.0, t=100.0)
    assert taken.units == 3
    upd = book.apply(0, "restock", 10, grams=1500.2, level_g=6 * 150.0 + 1500.2, t=115.0)
    assert (upd.units, upd.label, upd.reason) == (6, "misplaced", "moved")
    # staff's ten bags later, with no bottle gone in the window, are stock
    later = book.apply(0, "restock", 10, grams=1500.0, level_g=16 * 150.0 + 1500.2, t=400.0)
    assert (later.units, later.label, later.relabelled) == (16, "restock", None)


def test_an_item_taken_and_brought_back_is_a_return() -> None:
    book = bay()
    book.apply(3, "removal", -2, grams=-99.9, level_g=8 * 50.0, t=10.0)  # same weight
    book.apply(4, "removal", -1, grams=-100.2, level_g=7 * 100.0, t=12.0)
    upd = book.apply(4, "return", 1, grams=100.1, level_g=8 * 100.0, t=30.0)
    assert (upd.units, upd.label, upd.relabelled) == (8, "return", None)


def test_the_latest_removal_of_the_same_weight_explains_an_addition() -> None:
    book = bay()
    book.apply(4, "removal", -1, grams=-100.2, level_g=7 * 100.0, t=10.0)
    book.apply(3, "removal", -2, grams=-99.9, level_g=8 * 50.0, t=12.0)  # two gums, later
    upd = book.apply(4, "return", 1, grams=100.1, level_g=8 * 100.0, t=30.0)
    assert (upd.units, upd.label, upd.relabelled, upd.reason) == (7, "misplaced", "return", "moved")


def test_a_removal_matching_a_foreign_item_takes_the_item_not_stock() -> None:
    book = bay()
    # a chocolate bar (100 g) left on the gum slot: exactly two gums by weight
    book.apply(4, "removal", -1, grams=-100.0, level_g=7 * 100.0, t=10.0)
    moved = book.apply(3, "return", 2, grams=100.0, level_g=10 * 50.0 + 100.0, t=20.0)
    assert (moved.units, moved.label) == (10, "misplaced")
    # 100 g leaves the gum slot: the bar, as likely as two gums and the one that stands out
    gone = book.apply(3, "removal", -2, grams=-100.1, level_g=10 * 50.0, t=300.0)
    assert gone.units == 10 and "foreign_g" not in book.features(3)
    # the bar put back on its own slot is stock there
    home = book.apply(4, "return", 1, grams=100.0, level_g=8 * 100.0, t=310.0)
    assert (home.units, home.label) == (8, "return")


def test_a_misplaced_decision_on_whole_own_units_is_stock_unless_it_could_be_an_item() -> None:
    book = bay()
    # five cereal boxes a decider called misplaced: whole units, no item gone, not one unit
    # of any other SKU of the bay: a restock
    upd = book.apply(2, "misplaced", 5, grams=1875.4, level_g=10 * 375.0, t=10.0)
    assert (upd.units, upd.label, upd.relabelled, upd.reason) == (
        10,
        "restock",
        "misplaced",
        "whole",
    )
    # 100 g on the gum slot is two gums or one chocolate bar: the decision stands
    bar = book.apply(3, "misplaced", 2, grams=100.1, level_g=12 * 50.0 + 0.1, t=20.0)
    assert (bar.units, bar.label, bar.relabelled) == (10, "misplaced", None)
    # a unit taken and put back on its own slot is a return, whatever it was called
    book.apply(1, "removal", -1, grams=-1500.2, level_g=3 * 1500.0, t=30.0)
    back = book.apply(1, "misplaced", 1, grams=1500.0, level_g=4 * 1500.0, t=45.0)
    assert (back.units, back.label, back.reason) == (4, "return", "whole")


def test_the_decided_label_of_any_decider_is_booked_the_same_way() -> None:
    book = bay()
    shopper = Presence("bay", 0, 30, 30.0, 0.5, 1)
    soup = WeightChange(2, 400.3, 1, 5, 8, 0.9, level_g=5 * 375.0 + 400.3)
    w = EventWindow("b", 1, 0, 30, 12, shopper, (), (soup,), {2: SlotContext(2, 375.0)}, 0)
    origin = Origin("s", "b", {2: "SKU-2"}, decided_by="model", model_version=3)
    evs = window_events(w, WindowDecision("touch", 0.9, (("return", 0.8),)), book, origin)
    stock = [e for e in evs if e["kind"] == "stock"]
    assert [e["label"] for e in stock] == ["misplaced"]
    assert stock[0]["stock_units"] == 5
    assert stock[0]["features"]["decided"] == "return"
    assert stock[0]["features"]["relabel_reason"] == "fit"


@given(
    start=st.integers(0, 30),
    moves=st.lists(st.tuples(st.integers(-4, 4), st.floats(-1.0, 1.0)), max_size=40),
)
def test_whole_units_of_the_slots_own_sku_keep_the_count_exact(
    start: int, moves: list[tuple[int, float]]
) -> None:
    """Own units taken and added, weighed within the noise, leave the count the truth."""
    book = bay()
    book.recount(2, start, level_g=start * 375.0)
    truth, t = start, 0.0
    for units, noise in moves:
        units = max(units, -truth)
        if units == 0:
            continue
        t += 30.0
        truth += units
        grams = units * 375.0 + noise * TOL.noise_g
        label = "removal" if units < 0 else "restock" if units >= 3 else "return"
        upd = book.apply(2, label, units, grams=grams, level_g=truth * 375.0 + noise, t=t)
        assert upd.units == truth and upd.label == label


@given(
    start=st.integers(1, 20),
    k=st.integers(0, 3),
    frac=st.floats(0.1, 0.9),
    label=st.sampled_from(["return", "restock", "none", "misplaced"]),
    gap=st.floats(1.0, 10_000.0),
)
def test_a_foreign_item_added_then_removed_leaves_the_count_unchanged(
    start: int, k: int, frac: float, label: str, gap: float
) -> None:
    book = StockBook([slot(0, 375.0)], {0: start}, config=StockConfig())
    grams = (k + frac) * 375.0
    if abs(frac * 375.0 - round(frac) * 375.0) <= TOL.grams(grams, 375.0) + 1.0:
        return  # within the tolerance of whole units: stock by weight
    if grams <= 3 * TOL.noise_g:
        return
    units = round(grams / 375.0)
    on = book.apply(0, label, units, grams=grams, level_g=start * 375.0 + grams, t=10.0)
    assert on.units == start and on.label == "misplaced"
    off_label = "removal" if units else "none"  # what the physics table allows for it
    off = book.apply(0, off_label, -units, grams=-grams, level_g=start * 375.0, t=10.0 + gap)
    assert off.units == start and "foreign_g" not in book.features(0)
