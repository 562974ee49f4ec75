"""Smoke test of the console benchmark at a tiny size: every page answers 200 under load (no timing)."""

from __future__ import annotations

import pytest

from tests.bench import bench_console


@pytest.mark.slow(seconds=20)
def test_bench_console_reads_every_page_without_errors(capsys) -> None:
    rows = bench_console.run(True, pg=False, sizes=(2_000, 0.4, 3))  # PostgreSQL: tests/cloud
    table = capsys.readouterr().out
    assert len(rows) == len(bench_console.paths()) >= 8
    assert all(r.seconds and r.errors == 0 for r in rows), [(r.endpoint, r.errors) for r in rows]
    assert "p99 ms" in table and "1,000 units" in table
