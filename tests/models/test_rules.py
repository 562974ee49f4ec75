"""The rule baseline: sensible decisions on clear cases, thresholds fitted by search."""

from __future__ import annotations

from models.labels import INTEREST_LABELS
from models.metrics import macro_f1
from models.rules import InterestRules, RuleBaseline, StockRules, stock_rule
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext
from tests.models.factory import make_records


def _f1(rules: RuleBaseline, recs) -> float:
    y = [INTEREST_LABELS.index(r.interest) for r in recs if r.interest]
    p = [INTEREST_LABELS.index(rules.predict(r.window)[0]) for r in recs if r.interest]
    return macro_f1(y, p, len(INTEREST_LABELS))


def test_clear_cases() -> None:
    ctx = {0: SlotContext(0, 100.0)}
    shopper = Presence("bay", 0, 8, 8.0, 0.6, 1)
    take = EventWindow(
        "b", 1, 0, 8, 12, shopper, (), (WeightChange(0, -200.0, -2, 1, 2, 0.9),), ctx, 0
    )
    assert RuleBaseline().predict(take) == ("take", ["removal"])
    drift = EventWindow("b", 2, 0, 8, 3, None, (), (WeightChange(0, 30.0, 0, 1, 9, 0.2),), ctx, 0)
    assert RuleBaseline().predict(drift)[1] == ["sensor_fault"]
    odd = WeightChange(0, 150.0, 2, 1, 2, 0.9)  # 1.5 units: not this slot's SKU
    assert stock_rule(StockRules(), take, odd) == "misplaced"
    passer = EventWindow("b", 3, 0, 0.6, 12, Presence("bay", 0, 0.6, 0.6, 0.1, 1), (), (), {}, 0)
    assert RuleBaseline().predict(passer) == ("pass_by", [])


def test_a_slot_handled_with_no_unit_moved_is_a_touch_when_the_rules_say_so() -> None:
    ctx = {0: SlotContext(0, 100.0)}
    stop = Presence("bay", 0, 5, 5.0, 0.1, 1)  # short and still: a glance by dwell and motion
    handled = EventWindow(
        "b", 4, 0, 5, 12, stop, (), (WeightChange(0, 2.0, 0, 1, 3, 0.95),), ctx, 0
    )
    assert RuleBaseline().predict(handled) == ("touch", ["none"])
    assert RuleBaseline(InterestRules(touch_handled=False)).predict(handled)[0] == "glance"


def test_fitting_does_not_lose_to_the_defaults_on_held_out_data() -> None:
    train, test = make_records(300, seed=11), make_records(200, seed=12)
    fitted = RuleBaseline.fit(train)
    assert _f1(fitted, train) >= _f1(RuleBaseline(), train)
    assert _f1(fitted, test) > 0.5
    assert set(fitted.to_dict()) == {"interest", "stock"}


def _window(
    presence: Presence | None, *changes: WeightChange, units: dict[int, float]
) -> EventWindow:
    ctx = {s: SlotContext(s, u) for s, u in units.items()}
    return EventWindow("b", 9, 0, 60, 12, presence, (), changes, ctx, 0)


SHOPPER = Presence("bay", 0, 60, 60.0, 0.6, 1)


def test_an_item_moved_from_another_slot_is_misplaced_even_in_whole_units() -> None:
    taken = WeightChange(6, -1499.6, -1, 1, 4, 0.95)  # a 1,500 g bottle off its slot
    left = WeightChange(2, 1500.1, 10, 20, 24, 0.95)  # ... on the 150 g crisps slot
    w = _window(SHOPPER, taken, left, units={6: 1500.0, 2: 150.0})
    assert RuleBaseline().predict(w)[1] == ["removal", "misplaced"]
    # ten bags with no bottle gone are a restock
    alone = _window(SHOPPER, left, units={6: 1500.0, 2: 150.0})
    assert RuleBaseline().predict(alone)[1] == ["restock"]


def test_an_item_taken_and_brought_back_to_its_slot_is_a_return() -> None:
    elsewhere = WeightChange(4, -99.8, -2, 1, 4, 0.95)  # two 50 g units weigh the same
    out = WeightChange(5, -100.2, -1, 2, 5, 0.95)
    back = WeightChange(5, 100.0, 1, 20, 24, 0.95)
    w = _window(SHOPPER, elsewhere, out, back, units={5: 100.0, 4: 50.0})
    assert RuleBaseline().predict(w)[1] == ["removal", "removal", "return"]
    # the other way round the two gums were taken last: they are what was left here
    first = WeightChange(5, -100.2, -1, 1, 4, 0.95)
    then = WeightChange(4, -99.8, -2, 2, 5, 0.95)
    w = _window(SHOPPER, first, then, back, units={5: 100.0, 4: 50.0})
    assert RuleBaseline().predict(w)[1] == ["removal", "removal", "misplaced"]


def test_an_addition_off_whole_units_is_misplaced_whatever_its_confidence() -> None:
    soup = WeightChange(7, 400.3, 1, 1, 4, 0.2)  # 400 g on a 375 g slot: low weigh confidence
    w = _window(SHOPPER, soup, units={7: 375.0})
    assert RuleBaseline().predict(w)[1] == ["misplaced"]


def test_with_nobody_seen_only_whole_units_within_the_noise_are_stock() -> None:
    missed = WeightChange(11, -1280.5, -2, 1, 4, 0.6)  # two 640 g units, camera saw no one
    assert RuleBaseline().predict(_window(None, missed, units={11: 640.0}))[1] == ["removal"]
    jump = WeightChange(11, -1250.0, -2, 1, 2, 0.9)  # 30 g off: a cell jumping
    assert RuleBaseline().predict(_window(None, jump, units={11: 640.0}))[1] == ["sensor_fault"]
    strict = RuleBaseline(stock=StockRules(blind_whole_units=False))
    assert strict.predict(_window(None, missed, units={11: 640.0}))[1] == ["sensor_fault"]
