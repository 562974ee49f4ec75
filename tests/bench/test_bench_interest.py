"""Smoke test of the interest benchmark on a few simulated minutes: the cloud shows SKUs."""

from __future__ import annotations

import pytest

from tests.bench import bench_interest


def test_bench_interest_quick(capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_interest.main(["--hours", "0.1"])["busy"]
    assert result["cloud"] and result["truth"]
    assert "| SKU | episodes cloud |" in capsys.readouterr().out
