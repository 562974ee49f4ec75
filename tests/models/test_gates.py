"""Release gates decide on figures alone."""

from __future__ import annotations

from models.labels import INTEREST_LABELS, STOCK_LABELS
from models.metrics import confusion, macro_f1
from models.train.evaluate import HeadScore, Score
from models.train.gates import metric_gates, shop_gates, trained_classes


def _score(i: float, s: float) -> Score:
    return Score(HeadScore(i, {}, [], 10), HeadScore(s, {}, [], 10))


def test_gates_pass_when_int8_keeps_97_percent_and_agrees() -> None:
    g = metric_gates(_score(0.90, 0.80), _score(0.875, 0.80), 0.995)
    assert g.passed, g.failures()


def test_each_gate_fails_on_its_own() -> None:
    g = metric_gates(_score(0.90, 0.80), _score(0.86, 0.80), 0.995)
    assert not g.passed and len(g.failures()) == 1 and "interest" in g.failures()[0]
    g = metric_gates(_score(0.90, 0.80), _score(0.90, 0.70), 0.995)
    assert [f.split(" ")[0] for f in g.failures()] == ["stock"]
    g = metric_gates(_score(0.90, 0.80), _score(0.90, 0.80), 0.98)
    assert len(g.failures()) == 1 and "agree" in g.failures()[0]


def _head(labels: tuple[str, ...], pairs: list[tuple[str, str]]) -> HeadScore:
    """A head scored from ``(truth, predicted)`` pairs."""
    y = [labels.index(t) for t, _ in pairs]
    p = [labels.index(q) for _, q in pairs]
    m = confusion(y, p, len(labels))
    return HeadScore(macro_f1(y, p, len(labels)), {}, m.tolist(), len(y))


INTEREST_OK = [(c, c) for c in INTEREST_LABELS]
STOCK_OK = [(c, c) for c in ("none", "removal", "return", "restock")]
TRAINED = {"interest": set(INTEREST_LABELS), "stock": {"none", "removal", "return", "restock"}}


def _scored(stock: list[tuple[str, str]]) -> Score:
    return Score(_head(INTEREST_LABELS, INTEREST_OK), _head(STOCK_LABELS, stock))


def test_shop_gates_pass_a_model_as_good_as_the_rules_on_every_class() -> None:
    g = shop_gates(_scored(STOCK_OK), _scored(STOCK_OK), TRAINED)
    assert g.passed, g.failures()
    assert len(g.checks) == 5


def test_a_stock_head_worse_than_the_rules_is_refused() -> None:
    worse = [*STOCK_OK, ("return", "removal"), ("removal", "none")]
    g = shop_gates(_scored(worse), _scored(STOCK_OK), TRAINED, tolerance=0.02)
    (fail,) = g.failures()
    assert fail.startswith("stock not worse than the rules by more than 0.02")
    assert "vs rules 1.000" in fail
    # within the tolerance it passes
    rules = _scored(worse)
    assert shop_gates(_scored(worse), rules, TRAINED).passed


def test_a_class_seen_in_training_but_never_predicted_is_refused_by_name() -> None:
    never_return = [*STOCK_OK[:2], ("return", "restock"), ("restock", "restock")]
    g = shop_gates(_scored(never_return), _scored(never_return), TRAINED)
    (fail,) = g.failures()
    assert fail == (
        "stock: every class seen in training is predicted: never predicted on the gate set: return"
    )


def test_a_gate_set_without_a_class_the_model_may_emit_is_refused_by_name() -> None:
    # misplaced is never in the gate set: not seen in training, but the model emits it
    emits = [*STOCK_OK, ("restock", "misplaced")]
    g = shop_gates(_scored(emits), _scored(emits), TRAINED)
    (fail,) = g.failures()
    assert "the gate set holds every class the model may emit" in fail
    assert "gate set has no misplaced (predicted 1x)" in fail
    # restock is seen in training but missing from the gate set: no vacuous pass either
    no_restock = STOCK_OK[:3]
    g = shop_gates(_scored(no_restock), _scored(no_restock), TRAINED)
    assert [f.split(":")[0] for f in g.failures()] == ["stock", "stock"]
    assert all("restock" in f for f in g.failures())


def test_trained_classes_from_label_ids() -> None:
    got = trained_classes({"stock": [0, 1, -100, 1], "interest": []})
    assert got == {"stock": {"none", "removal"}, "interest": set()}
