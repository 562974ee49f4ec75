"""The suite's start order: long tests first, spread over the workers' shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from tests.support.ordering import slow_seconds, spread


@dataclass(eq=False)
class FakeMark:
    kwargs: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False)
class FakeItem:
    """Just what ``spread`` reads of a pytest item: its ``slow`` mark."""

    name: str
    seconds: float | None

    def get_closest_marker(self, name: str) -> FakeMark | None:
        if name != "slow" or self.seconds is None:
            return None
        return FakeMark({"seconds": self.seconds})


def shares_of(order: list, n: int) -> list[list]:
    """How xdist's worksteal scheduler cuts the collection at the start."""
    out, left, pos = [], len(order), 0
    for k in range(n):
        size = left // (n - k)
        out.append(order[pos : pos + size])
        pos += size
        left -= size
    return out


weights = st.one_of(st.none(), st.floats(1, 200))


@given(st.lists(weights, max_size=60), st.integers(1, 4))
def test_spread_keeps_every_test_once_and_the_rest_in_order(ws: list, n: int) -> None:
    items = [FakeItem(f"t{i}", w) for i, w in enumerate(ws)]
    order = spread(items, n)  # type: ignore[arg-type]
    assert sorted(it.name for it in order) == sorted(it.name for it in items)
    rest = [it for it in order if it.seconds is None]
    assert rest == [it for it in items if it.seconds is None]
    for share in shares_of(order, n):  # each share opens with its long tests, heaviest first
        long = [it.seconds for it in share if it.seconds is not None]
        assert [it.seconds for it in share[: len(long)]] == long
        assert long == sorted(long, reverse=True)


@given(st.lists(st.floats(1, 200), min_size=1, max_size=12), st.integers(0, 80), st.integers(2, 4))
def test_long_tests_are_balanced_within_the_heaviest_one(ws: list, short: int, n: int) -> None:
    items = [FakeItem(f"long{i}", w) for i, w in enumerate(ws)]
    items += [FakeItem(f"short{i}", None) for i in range(short)]
    order = spread(items, n)  # type: ignore[arg-type]
    loads = [sum(it.seconds or 0.0 for it in s) for s in shares_of(order, n)]
    if len(items) >= n * len(ws):  # room for every long test in any share
        assert max(loads) - min(loads) <= max(ws) + 1e-9


def test_an_unmarked_test_weighs_nothing_and_a_bare_mark_the_default() -> None:
    assert slow_seconds(FakeItem("a", None)) is None  # type: ignore[arg-type]
    bare = FakeItem("b", 1.0)
    bare.get_closest_marker = lambda name: FakeMark()  # type: ignore[method-assign]
    assert slow_seconds(bare) == 10.0  # type: ignore[arg-type]


def test_one_worker_runs_long_tests_first() -> None:
    items = [FakeItem("a", None), FakeItem("b", 5.0), FakeItem("c", None), FakeItem("d", 50.0)]
    assert [it.name for it in spread(items, 1)] == ["d", "b", "a", "c"]  # type: ignore[arg-type]
