"""Smoke run of the cloud-return benchmark with a short outage: everything arrives once."""

from __future__ import annotations

import pytest

from tests.bench.bench_cloud_return import main


def test_short_outage_bench_delivers_everything_once(capsys: pytest.CaptureFixture[str]) -> None:
    (res,) = main(["--outage", "3", "--per-s", "5"])
    assert res["backlog"] > 0 and res["all_once_in_order"]
    assert "after the cloud is back" in capsys.readouterr().out
