"""The shadow scorer, pure, and the seat the decision worker runs a candidate through."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.events import WindowDecision
from edge.ota.shadow import LatencyLog, ShadowScore, ShadowSeat
from models.window import EventWindow

STOCK = st.sampled_from(["removal", "restock", "return", "none"])
DECISIONS = st.builds(
    lambda i, s: WindowDecision(i, 0.9, tuple((x, 0.9) for x in s)),
    st.one_of(st.none(), st.sampled_from(["pass_by", "glance", "pick_up"])),
    st.lists(STOCK, max_size=3),
)


@given(st.lists(DECISIONS, min_size=1, max_size=30), st.floats(0.001, 1), st.floats(0.001, 1))
def test_a_candidate_deciding_like_the_current_model_agrees_fully(
    ds: list[WindowDecision], cur_s: float, cand_s: float
) -> None:
    score = ShadowScore()
    score.add(ds, ds, cur_s, cand_s)
    r = score.result()
    assert r.windows == len(ds) and r.errors == 0
    assert all(a == 1.0 for a in r.agreement.values())
    assert set(r.agreement) == {
        *(["interest"] if any(d.interest is not None for d in ds) else []),
        *(["stock"] if any(d.stock for d in ds) else []),
    }
    assert r.latency_ratio == pytest.approx(cand_s / cur_s)


@given(st.lists(st.tuples(DECISIONS, DECISIONS), min_size=1, max_size=30))
def test_agreement_is_a_share_per_head(pairs: list[tuple[WindowDecision, WindowDecision]]) -> None:
    score = ShadowScore()
    score.add([a for a, _ in pairs], [b for _, b in pairs], 1.0, 1.0)
    r = score.result()
    assert all(0.0 <= a <= 1.0 for a in r.agreement.values())
    assert r.lowest is None or r.lowest == min(r.agreement.values())
    agreeing = sum(a.interest == b.interest for a, b in pairs if a.interest is not None)
    with_shopper = sum(a.interest is not None for a, _ in pairs)
    if with_shopper:
        assert r.agreement["interest"] == pytest.approx(agreeing / with_shopper)


def test_stock_labels_are_compared_change_by_change() -> None:
    cur = [WindowDecision(None, 0, (("removal", 1), ("none", 1)))]
    cand = [WindowDecision(None, 0, (("removal", 1), ("restock", 1)))]
    score = ShadowScore()
    score.add(cur, cand, 0.002, 0.006)
    score.add(cur, cur, 0.002, 0.006)
    r = score.result()
    assert r.agreement == {"stock": 0.75} and r.windows == 2
    assert r.latency_ratio == pytest.approx(3.0)
    score.add(cur, [], 0.001, 0.001)  # a candidate that skips windows is an error
    assert score.result().errors == 1


class Flaky:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        if self.fail:
            raise RuntimeError("boom")
        return [WindowDecision(None, 0, (("none", 1),)) for _ in windows]


def test_the_seat_scores_a_candidate_and_swallows_its_errors() -> None:
    seat = ShadowSeat()
    window: EventWindow = object()  # type: ignore[assignment]  # the fakes never look inside
    cur = [WindowDecision(None, 0, (("none", 1),))]
    seat.beside([window], cur, 0.01)  # nobody seated: nothing happens
    seat.seat(3, Flaky(fail=False))
    seat.beside([window], cur, 0.01)
    assert seat.version == 3 and seat.result().agreement == {"stock": 1.0}
    seat.seat(4, Flaky(fail=True))  # a fresh score for a new candidate
    seat.beside([window], cur, 0.01)
    assert seat.result().errors == 1 and seat.result().windows == 0
    seat.clear()
    assert seat.version is None


def test_latency_log_medians_per_version() -> None:
    log = LatencyLog(keep=100)
    log.record(1, 0.02, 10)
    log.record(2, 0.5, 5)
    log.record(2, 0.0, 0)  # no windows: nothing recorded
    assert log.median(1) == (pytest.approx(0.002), 10)
    assert log.median(2, last=3) == (pytest.approx(0.1), 3)
    log.forget([2])
    assert log.median(1) == (None, 0)
