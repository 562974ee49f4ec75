"""Smoke run of the agent benchmark (quick mode): the agent runs, decides and stops; never timing."""

from __future__ import annotations

import pytest

from tests.bench.bench_agent import main


@pytest.mark.slow(seconds=40)
def test_quick_agent_bench_runs_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")  # the bench exports the model bundle it installs
    rows = main(["--quick"])
    printed = capsys.readouterr().out
    assert "| run | pacing |" in printed and "peak RSS, rules deciding" in printed
    assert "peak RSS, model deciding" in printed
    for key in ("weight", "full", "fast", "model_fast"):
        r = rows[key]
        assert r.exit_code == 0, key  # stopped cleanly on SIGTERM
        assert r.cpu_s > 0 and r.rss_mb > 0 and r.sim_s > 0
    assert rows["fast"].events > 0  # three busy minutes decide something
    assert rows["fast"].extra["decided_by"] == "rules"
    assert rows["model_fast"].events > 0
    assert rows["model_fast"].extra == {"decided_by": "model", "model": 1}
    assert rows["sim"].extra["frames"] == int(rows["sim"].sim_s * 10)
