"""Smoke test of the read-burst benchmark at a tiny size: every read answered 200 (no timing)."""

from __future__ import annotations

from tests.bench import bench_read_burst


def test_bench_read_burst_answers_every_read(capsys) -> None:
    rows = bench_read_burst.run(12, 60.0, pg=False)  # PostgreSQL: tests/cloud/test_read_gate.py
    assert [r.mode for r in rows] == ["2 at a time (baseline)", "12 at once"]
    assert all(r.answers == {"200": 12} for r in rows), [r.answers for r in rows]
    assert "until all answered s" in capsys.readouterr().out
