"""The outbox bookkeeping in memory: retention, room under the cap, holding, acks, batches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.buffer.policy import (
    AckLedger,
    BatchPlanner,
    HoldQueue,
    PendingRow,
    RetentionPolicy,
    Usage,
)


def policy(on_full: str = "drop_new", max_bytes: int = 10_000) -> RetentionPolicy:
    return RetentionPolicy(max_bytes=max_bytes, keep_synced_s=3600, on_full=on_full)  # type: ignore[arg-type]


def test_room_when_under_cap_admits_without_evicting() -> None:
    plan = policy().plan_room(Usage(5_000, 10, 10), 1_000)
    assert (plan.evict_synced, plan.evict_unsynced, plan.admit) == (0, 0, True)
    assert not plan.binds


def test_synced_rows_go_first() -> None:
    # 100 bytes per row; 1_500 over the cap -> 15 rows, 40 synced available.
    plan = policy().plan_room(Usage(9_500, 40, 55), 2_000)
    assert plan.evict_synced == 15 and plan.evict_unsynced == 0 and plan.admit


def test_unsynced_never_evicted_under_drop_new() -> None:
    plan = policy().plan_room(Usage(10_000, 3, 97), 1_000)
    assert plan.evict_synced == 3 and plan.evict_unsynced == 0
    assert not plan.admit and plan.binds


def test_evict_unsynced_oldest_is_explicit() -> None:
    plan = policy("evict_unsynced_oldest").plan_room(Usage(10_000, 3, 97), 1_000)
    assert plan.evict_synced == 3 and plan.evict_unsynced == 7 and plan.admit and plan.binds


def test_expiry_cutoff() -> None:
    assert policy().expiry_cutoff(10_000.0) == 10_000.0 - 3600


@given(
    used=st.integers(0, 10**7),
    synced=st.integers(0, 10**5),
    unsynced=st.integers(0, 10**5),
    incoming=st.integers(1, 10**5),
    on_full=st.sampled_from(["drop_new", "evict_unsynced_oldest"]),
)
def test_plan_never_evicts_more_than_exists(
    used: int, synced: int, unsynced: int, incoming: int, on_full: str
) -> None:
    plan = policy(on_full, max_bytes=1_000_000).plan_room(Usage(used, synced, unsynced), incoming)
    assert 0 <= plan.evict_synced <= synced
    assert 0 <= plan.evict_unsynced <= unsynced
    if on_full == "drop_new":
        assert plan.evict_unsynced == 0
    if plan.evict_unsynced:
        assert plan.evict_synced == synced  # synced rows went first


def test_hold_queue_bounded_and_ordered() -> None:
    q: HoldQueue[int] = HoldQueue(3)
    assert q.offer([1, 2]) == []
    assert q.offer([3, 4, 5]) == [4, 5]
    assert q.dropped == 2 and len(q) == 3
    assert q.peek_all() == [1, 2, 3]
    q.release(2)
    assert q.peek_all() == [3]
    with pytest.raises(ValueError):
        HoldQueue(0)


def test_ledger_believes_only_seqs_in_flight() -> None:
    led = AckLedger()
    led.sent([1, 2, 3], now=0.0)
    res = led.accept([2, 3, 9])
    assert res.accepted == [2, 3] and res.ignored == [9]
    assert led.accept([2]).ignored == [2]  # a repeated ack is not believed twice
    assert 1 in led and len(led) == 1


def test_ledger_accept_through() -> None:
    led = AckLedger()
    led.sent([4, 5, 7, 8], now=0.0)
    assert sorted(led.accept_through(7)) == [4, 5, 7]
    assert led.waiting([4, 5, 7, 8]) == [8]


def test_ledger_is_bounded() -> None:
    led = AckLedger(max_entries=3)
    led.sent([1, 2, 3, 4, 5], now=0.0)
    assert len(led) == 3 and 1 not in led and 5 in led


@given(
    sent=st.sets(st.integers(1, 200), max_size=50),
    acked=st.lists(st.integers(-5, 300), max_size=80),
)
def test_ledger_never_accepts_what_was_not_sent(sent: set[int], acked: list[int]) -> None:
    led = AckLedger()
    led.sent(sorted(sent), now=0.0)
    res = led.accept(acked)
    assert set(res.accepted) <= sent
    assert len(res.accepted) == len(set(res.accepted))
    assert set(res.accepted) | set(res.ignored) == set(acked)


def rows(seqs: range, created: float) -> list[PendingRow]:
    return [PendingRow(s, created, "{}") for s in seqs]


def test_planner_alternates_live_and_backlog() -> None:
    p = BatchPlanner(live_age_s=60)
    live, backlog = rows(range(100, 103), 1000.0), rows(range(1, 4), 10.0)
    first = p.choose(live, backlog)
    second = p.choose(live, backlog)
    third = p.choose(live, backlog)
    assert first is not None and second is not None and third is not None
    assert not first.historical and [r.seq for r in first.rows] == [100, 101, 102]
    assert second.historical and [r.seq for r in second.rows] == [1, 2, 3]
    assert not third.historical


def test_planner_single_stream_and_empty() -> None:
    p = BatchPlanner(live_age_s=60)
    assert p.choose([], []) is None
    only_backlog = p.choose([], rows(range(1, 3), 0.0))
    assert only_backlog is not None and only_backlog.historical
    only_live = p.choose(rows(range(5, 6), 0.0), [])
    assert only_live is not None and not only_live.historical
    assert p.cutoff(1000.0) == 940.0
