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
