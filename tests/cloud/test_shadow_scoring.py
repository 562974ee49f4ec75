"""Labelled accuracy of shadow windows and the gate on it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.shadow_scoring import (
    HeadAccuracy,
    LabelledWindow,
    labelled_accuracy,
    labelled_gate,
    labelled_window,
    truth_of,
)

LABELS = st.sampled_from(["pick_up", "put_back", "browse", "out"])
ROWS = st.lists(
    st.builds(LabelledWindow, st.sampled_from(["interest", "stock"]), LABELS, LABELS, LABELS),
    max_size=60,
)


def test_counts_per_head() -> None:
    rows = [
        LabelledWindow("interest", "pick_up", "pick_up", "pick_up"),
        LabelledWindow("interest", "browse", "pick_up", "pick_up"),
        LabelledWindow("interest", "browse", "browse", "put_back"),
        LabelledWindow("stock", "out", "ok", "out"),
    ]
    acc = labelled_accuracy(rows)
    assert acc == {"interest": HeadAccuracy(3, 1, 2), "stock": HeadAccuracy(1, 1, 0)}
    assert acc["interest"].as_dict() == {
        "windows": 3,
        "current_accuracy": pytest.approx(1 / 3),
        "candidate_accuracy": pytest.approx(2 / 3),
    }
    assert HeadAccuracy().current is None


@given(ROWS)
def test_accuracy_matches_a_direct_count(rows: list[LabelledWindow]) -> None:
    acc = labelled_accuracy(rows)
    assert sum(a.windows for a in acc.values()) == len(rows)
    for head, a in acc.items():
        mine = [r for r in rows if r.head == head]
        assert a.current_right == sum(r.current == r.truth for r in mine)
        assert a.candidate_right == sum(r.candidate == r.truth for r in mine)
        assert 0 <= a.candidate_right <= a.windows


def test_gate_waits_then_judges() -> None:
    assert labelled_gate({}, 0.02, 5).passed is None
    few = labelled_gate({"interest": HeadAccuracy(3, 3, 3)}, 0.02, 5)
    assert few.passed is None and "have interest 3" in few.why
    worse = labelled_gate({"interest": HeadAccuracy(10, 9, 7)}, 0.1, 5)
    assert worse.passed is False and "candidate 7/10 vs current 9/10" in worse.why
    assert labelled_gate({"interest": HeadAccuracy(10, 9, 8)}, 0.1, 5).passed is True
    assert labelled_gate({"interest": HeadAccuracy(10, 9, 10)}, 0.0, 5).passed is True
    with pytest.raises(ValueError, match="max_drop"):
        labelled_gate({}, -0.1, 5)


@given(ROWS, st.floats(0, 1), st.integers(1, 10))
def test_gate_passes_exactly_when_no_head_drops_too_far(
    rows: list[LabelledWindow], drop: float, need: int
) -> None:
    acc = labelled_accuracy(rows)
    verdict = labelled_gate(acc, drop, need)
    if not acc or any(a.windows < need for a in acc.values()):
        assert verdict.passed is None
    else:
        ok = all(
            (a.current_right - a.candidate_right) / a.windows <= drop + 1e-12 for a in acc.values()
        )
        assert verdict.passed is ok


def test_truth_from_sales_and_corrections() -> None:
    assert truth_of("stock", sale_matched=True, corrected=None) == "removal"
    assert truth_of("stock", sale_matched=True, corrected="restock") == "restock"
    assert truth_of("interest", sale_matched=True, corrected=None) is None
    assert truth_of("interest", sale_matched=False, corrected="take") == "take"
    assert labelled_window("stock", "removal", "restock") is None
    row = labelled_window("stock", "removal", "restock", sale_matched=True)
    assert row == LabelledWindow("stock", "removal", "restock", "removal")
    assert labelled_accuracy([row]) == {"stock": HeadAccuracy(1, 1, 0)}
