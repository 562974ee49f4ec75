"""Smoke run of the agent crash soak (quick mode): delivery facts after kill -9, never timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.bench_agent_crash import QUICK, main, report, run


def test_quick_agent_crash_soak_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    res = run(QUICK, tmp_path)
    assert res.kills == QUICK.kills and res.mid_traffic >= 1  # kills landed in traffic
    assert res.grew >= 1  # some run committed before it was killed
    assert res.caught_up >= 1  # a restart was seen live (new seq) before its kill timer began
    assert res.live_kills >= 1 and res.live_events >= res.live_kills  # killed after new commits
    assert len(res.catch_up_s) == QUICK.kills
    assert 0 < res.committed <= res.reference_events
    assert res.rewritten == 0  # a restart never rewrote a committed event
    assert res.lost == 0 and res.duplicated == 0 and res.missing == 0
    assert res.gaps == 0 and res.contiguous
    assert res.cloud_events == res.reference_events and res.equals_reference
    assert len(res.restart_s) == QUICK.kills
    assert "| kills |" in report(res)


def test_bench_entry_point_parses_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def fake_run(plan: object, tmp: Path, *, seed: int) -> object:
        seen.append((plan, seed))
        raise SystemExit(0)

    monkeypatch.setattr("tests.bench.bench_agent_crash.run", fake_run)
    with pytest.raises(SystemExit):
        main(["--quick", "--seed", "7"])
    assert seen == [(QUICK, 7)]
