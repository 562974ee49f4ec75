"""Whether added weight is the slot's own stock: whole units, and not an item just moved."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from models.foreign import ITEM_NOISE, Removal, Tolerance, judge_addition, whole_units

UNITS = {0: 150.0, 1: 1500.0, 2: 375.0, 3: 400.0, 4: 50.0, 5: 100.0}
TOL = Tolerance()


def test_an_addition_off_whole_units_is_foreign_by_fit() -> None:
    # a 400 g soup on a 375 g cereal slot: 25 g off one unit, beyond the noise
    v = judge_addition(2, 400.3, 10.0, UNITS, [])
    assert v is not None and v.foreign and v.reason == "fit"


def test_whole_units_matching_a_removal_from_another_slot_is_a_moved_item() -> None:
    # a 1,500 g bottle taken from slot 1 and left on the 150 g crisps slot: exactly ten bags
    taken = Removal(1, -1499.3, 100.0)
    v = judge_addition(0, 1500.2, 115.0, UNITS, [taken])
    assert v is not None and v.foreign and v.reason == "moved" and v.matched == taken
    # the same ten bags with no such removal are stock (staff restocking)
    alone = judge_addition(0, 1500.2, 115.0, UNITS, [])
    assert alone is not None and not alone.foreign


def test_the_latest_matching_removal_explains_an_addition() -> None:
    own = Removal(5, -100.2, 90.0)
    other = Removal(4, -99.9, 95.0)  # two 50 g units elsewhere weigh the same
    v = judge_addition(5, 100.1, 100.0, UNITS, [own, other])
    assert v is not None and v.foreign and v.reason == "moved" and v.matched == other
    back = Removal(5, -100.2, 97.0)  # taken from this slot after the other: brought back
    v = judge_addition(5, 100.1, 100.0, UNITS, [other, back])
    assert v is not None and not v.foreign and v.matched == back
    tie = Removal(5, -100.2, 95.0)  # at the same moment: this slot's own unit
    v = judge_addition(5, 100.1, 100.0, UNITS, [other, tie])
    assert v is not None and not v.foreign and v.matched == tie


def test_old_or_later_removals_explain_nothing() -> None:
    old = Removal(1, -1500.0, 0.0)
    later = Removal(1, -1500.0, 200.0)
    v = judge_addition(0, 1500.0, 100.0, UNITS, [old, later], window_s=60.0)
    assert v is not None and not v.foreign and v.matched is None


def test_a_removal_that_is_not_whole_units_of_its_slot_moved_nothing() -> None:
    # 1,500 g left slot 3 (400 g units: 3.75 units): not one of its items, so not moved
    v = judge_addition(0, 1500.0, 10.0, UNITS, [Removal(3, -1500.0, 5.0)])
    assert v is not None and not v.foreign


def test_a_foreign_item_taken_off_goes_home_as_stock() -> None:
    # a 400 g soup lifted off the cereal slot and put back on the soup slot
    home = Removal(2, -400.1, 50.0, foreign=True)
    v = judge_addition(3, 400.0, 60.0, UNITS, [home])
    assert v is not None and not v.foreign and v.matched == home


def test_noise_is_no_item() -> None:
    assert judge_addition(1, ITEM_NOISE * TOL.noise_g, 0.0, UNITS, []) is None
    assert judge_addition(1, -300.0, 0.0, UNITS, []) is None
    assert judge_addition(1, math.nan, 0.0, UNITS, []) is None


def test_whole_units_needs_one_unit_at_least() -> None:
    assert whole_units(149.0, 150.0, TOL) == 1
    assert whole_units(-3001.0, 1500.0, TOL) == 2
    assert whole_units(40.0, 150.0, TOL) is None
    assert whole_units(100.0, 0.0, TOL) is None


@given(
    slot=st.sampled_from(sorted(UNITS)),
    k=st.integers(1, 40),
    noise=st.floats(-1.0, 1.0),
)
def test_whole_own_units_with_no_removal_are_stock(slot: int, k: int, noise: float) -> None:
    g = k * UNITS[slot] + noise * TOL.noise_g
    v = judge_addition(slot, g, 0.0, UNITS, [])
    assert v is None or not v.foreign
    if g > ITEM_NOISE * TOL.noise_g:
        assert v is not None


@given(
    slot=st.sampled_from(sorted(UNITS)),
    k=st.integers(0, 20),
    frac=st.floats(0.0, 1.0),
)
def test_an_addition_beyond_the_tolerance_of_whole_units_is_foreign(
    slot: int, k: int, frac: float
) -> None:
    u = UNITS[slot]
    lo = TOL.grams(k * u + u, u) + 0.5  # farther from both neighbours than the tolerance
    off = lo + frac * max(0.0, u - 2 * lo)
    if off >= u - lo:
        return
    g = k * u + off
    v = judge_addition(slot, g, 0.0, UNITS, [])
    if g > ITEM_NOISE * TOL.noise_g:
        assert v is not None and v.foreign and v.reason == "fit"
