"""Smoke test of the storm benchmark at a tiny size, ingest in a process of its own (no timing)."""

from __future__ import annotations

from pathlib import Path

from tests.bench import bench_storm
from tests.bench.fleet import ROUTES


def test_bench_storm_drains_everything_and_reads_every_route(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'storm.db'}"
    row, reads = bench_storm.storm(url, 4, 60, 25, 3, 1, ingest_processes=1, quiet_s=1.0)
    assert 0 < int(str(row["events"])) <= 480 and row["lost"] == 0
    assert row["other 5xx"] == 0 and row["read errors"] == 0
    assert row["RSS MB"] != 0
    quiet, during, ratio = reads
    assert quiet["reads"] == "quiet (baseline)" and during["reads"] == "during the drain"
    for route in ROUTES:  # each route was read while quiet: "p50 / p99 (n)" with n > 0
        assert not str(quiet[route]).endswith("(0)"), quiet
    assert set(ratio) == {"reads", *ROUTES}
