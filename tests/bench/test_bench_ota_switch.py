"""The switch bench's reading of an outbox: windows missed or decided twice, versions mixed, gaps."""

from __future__ import annotations

from typing import Any

from tests.bench.bench_ota_switch import read_back


def ev(seq: int, version: int, episode: int | None) -> dict[str, Any]:
    window = None if episode is None else {"episode": episode}
    return {"seq": seq, "model_version": version, "window": window}


def test_a_clean_switch_reads_as_nothing_missed_or_mixed() -> None:
    events = [ev(1, 1, 4), ev(2, 1, None), ev(3, 1, 5), ev(4, 2, 6), ev(5, 2, None), ev(6, 2, 7)]
    run = read_back("switch", events, 1.5, 0.75)
    assert (run.windows, run.missed, run.twice) == (4, 0, 0)
    assert run.events_by_version == {1: 3, 2: 3}
    assert (run.v1_after_v2, run.seq_gaps) == (0, 0)
    assert run.line() == "| switch | 4 | 0 | 0 | v1: 3, v2: 3 | 0 | 0 | 1.50 | 0.75 |"


def test_a_window_skipped_repeated_or_decided_by_the_old_model_late_is_counted() -> None:
    events = [ev(1, 1, 1), ev(2, 2, 3), ev(3, 1, 3), ev(5, 2, 4)]
    run = read_back("switch", events, None, 0.0)
    assert run.missed == 1  # episode 2 never decided
    assert run.twice == 1  # episode 3 twice
    assert run.v1_after_v2 == 1 and run.seq_gaps == 1
