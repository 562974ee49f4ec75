"""Smoke test of the ingest benchmark at a tiny size: every way stores every event (no timing)."""

from __future__ import annotations

import pytest

from tests.bench import bench_ingest


@pytest.mark.slow(seconds=15)
def test_bench_ingest_runs_and_stores_every_event(capsys) -> None:
    figs = bench_ingest.run(True, sizes=(1_000, 250, 1))  # raises if a way lost or doubled events
    table = capsys.readouterr().out
    dbs = {f.db for f in figs}
    assert "SQLite" in dbs
    for db in dbs:
        assert sorted(f.way for f in figs if f.db == db) == ["HTTP", "executemany", "store_events"]
    assert all(f.events == 1_000 and f.rate > 0 for f in figs)
    assert "| SQLite | store_events |" in table and "ratio to executemany" in table
