"""Smoke test of the MQTT fuzz benchmark at a tiny size: both databases, a table (no timing)."""

from __future__ import annotations

from tests.bench import bench_mqtt_fuzz


def test_bench_mqtt_fuzz_runs_on_both_databases(capsys) -> None:
    rows = bench_mqtt_fuzz.run(True, n=8)
    assert [db for db, _, _ in rows] == ["sqlite", "postgresql"]
    assert all(r.examples >= 8 and r.worker_errors == 0 and base > 0 for _, r, base in rows)
    assert "ms/round fuzz" in capsys.readouterr().out
