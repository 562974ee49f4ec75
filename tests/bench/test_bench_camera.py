"""Smoke test of the camera benchmark in quick mode: accuracy targets, never timing."""

from __future__ import annotations

import pytest

from tests.bench import bench_camera


@pytest.mark.slow(seconds=15)
def test_quick_bench_meets_accuracy_targets(capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench_camera.main(["--quick"])
    acc = figures["accuracy"]
    assert isinstance(acc, bench_camera.AccuracyResult)
    assert acc.ours.tp > 10
    assert acc.ours.f1 >= 0.95
    assert acc.ours.median_dwell_error <= 0.5
    assert acc.ours.f1 > acc.naive.f1  # shadows and flicker defeat the naive baseline
    mem = figures["memory"]
    assert isinstance(mem, dict) and mem["frames_held"] == 1
    assert "| episode F1 |" in capsys.readouterr().out
