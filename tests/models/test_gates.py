"""Release gates decide on figures alone."""

from __future__ import annotations

from models.train.evaluate import HeadScore, Score
from models.train.gates import metric_gates


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
