"""Smoke run of the weight benchmark (quick mode): accuracy targets, never timing."""

from __future__ import annotations

import pytest

from tests.bench.bench_weight import SCENARIOS, TARGET, main


def test_quick_weight_bench_meets_the_accuracy_targets(capsys: pytest.CaptureFixture[str]) -> None:
    results = main(["--quick"])
    printed = capsys.readouterr().out
    assert "| scenario |" in printed
    for name in SCENARIOS:
        ours, naive = results[name]
        assert ours.detector == "pipeline" and naive.detector == "naive"
        assert ours.score.truth >= 3, name
        assert ours.score.precision >= TARGET, name
        assert ours.score.recall >= TARGET, name
        assert ours.score.unit_accuracy >= TARGET, name
        # the baseline runs on the same data and is worse: the comparison is meaningful
        assert naive.score.truth == ours.score.truth
        assert naive.score.precision < ours.score.precision
    assert sum(results[n][0].score.truth for n in SCENARIOS) >= 100  # enough to mean something
