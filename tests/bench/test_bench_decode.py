"""Smoke test of the decode benchmark in quick mode: it runs and decodes exactly."""

from __future__ import annotations

import pytest

from tests.bench import bench_decode


def test_bench_decode_quick(capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_decode.main(["--quick"])
    assert result["exact"] == (True, True)
    out = capsys.readouterr().out
    assert "| Decoder + frames_to_block |" in out and "x real time" in out
