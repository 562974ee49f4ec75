"""Smoke run of the weight path benchmark (quick mode): bytes give the in-process changes."""

from __future__ import annotations

import pytest

from tests.bench import bench_weight_path


def test_quick_weight_path_bench_finds_the_in_process_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = bench_weight_path.main(["--quick"])
    via_bytes = result["changes_bytes"]
    in_process = result["changes_in_process"]
    assert isinstance(via_bytes, list) and isinstance(in_process, list)
    assert len(in_process) >= 3  # a busy bay: the comparison covers real changes
    assert [(c.slot, c.units, c.grams) for c in via_bytes] == [
        (c.slot, c.units, c.grams) for c in in_process
    ]
    assert result["same_changes"] is True
    assert result["samples_exact"] is True
    out = capsys.readouterr().out
    assert "| decode + signals (bytes -> changes) |" in out and "x real time" in out
