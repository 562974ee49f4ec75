"""Smoke run of the agent crash soak (quick mode, real cloud service): delivery facts
after kill -9, never timing; and the buffer-to-cloud comparison on its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.bench.bench_agent_crash import FULL, QUICK, SEED, main, report, run
from tests.edge.soak_cloud import same_event


@pytest.mark.slow(seconds=20)
def test_quick_agent_crash_soak_against_the_real_cloud_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    res = run(QUICK, tmp_path)
    assert res.kills == QUICK.kills and res.mid_traffic >= 1  # kills landed in traffic
    assert res.grew >= 1  # some run committed before it was killed
    assert res.caught_up >= 1  # a restart was seen live (new seq) before its kill timer began
    assert res.live_kills >= 1 and res.live_events >= res.live_kills  # killed after new commits
    assert len(res.catch_up_s) == QUICK.kills
    assert 0 < res.committed <= res.reference_events
    assert res.rewritten == 0  # a restart never rewrote a committed event
    assert res.lost == 0 and res.duplicated == 0 and res.missing == 0
    assert res.changed_bodies == 0
    assert {"episode", "kind", "label", "mono_time", "wall_time", "features"} <= set(res.fields)
    assert res.gaps == 0 and res.contiguous
    assert res.cloud_events == res.reference_events and res.equals_reference
    assert len(res.restart_s) == QUICK.kills
    assert "| kills |" in report(res) and "real cloud service" in report(res)


def test_stored_event_is_compared_on_shared_fields_with_times_as_instants() -> None:
    committed = {"seq": 3, "label": "removal", "wall_time": "2026-11-22T10:00:00.250000+00:00"}
    stored = {"seq": 3, "label": "removal", "wall_time": "2026-11-22T10:00:00.250000", "window": 7}
    assert same_event(stored, committed)  # re-serialised time, a field only the cloud keeps
    assert same_event({**stored, "historical": True}, {**committed, "historical": False})
    assert not same_event({**stored, "label": "return"}, committed)
    assert not same_event({**stored, "wall_time": "2026-11-22T10:00:01+00:00"}, committed)


def test_bench_entry_point_parses_quick_and_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def fake_run(plan: object, tmp: Path, *, seed: int) -> object:
        seen.append((plan, seed))
        raise SystemExit(0)

    monkeypatch.setattr("tests.bench.bench_agent_crash.run", fake_run)
    with pytest.raises(SystemExit):
        main(["--quick", "--seed", "7"])
    with pytest.raises(SystemExit):
        main(["--quick"])
    with pytest.raises(SystemExit):
        main(["--kills", "5", "--hours", "0.2"])
    with pytest.raises(SystemExit) as err:
        main(["--quick", "--cloud", "stand-in"])  # the stand-in cloud is gone
    assert err.value.code == 2
    assert seen == [(QUICK, 7), (QUICK, SEED), (replace(FULL, kills=5, hours=0.2), SEED)]
