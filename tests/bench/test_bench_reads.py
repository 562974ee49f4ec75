"""Smoke test of the read benchmark at a tiny size: every endpoint answers 200 under load (no timing)."""

from __future__ import annotations

from tests.bench import bench_reads


def test_bench_reads_runs_every_endpoint_without_errors(capsys) -> None:
    rows = bench_reads.run(True, pg=False, sizes=(3_000, 0.4))  # PostgreSQL reads: tests/cloud
    table = capsys.readouterr().out
    endpoints = {"health (baseline)", "stock", "interest", "feed"}
    for db in {r.db for r in rows}:
        for load in bench_reads.LOADS:
            got = {r.endpoint for r in rows if r.db == db and r.load == load}
            assert got == endpoints
    assert all(r.seconds and r.errors == 0 for r in rows), [(r.endpoint, r.errors) for r in rows]
    assert "p99 ms" in table
