"""Smoke test of the rollout benchmark at a tiny size: every unit ends on v2, the bytes add up (no timing)."""

from __future__ import annotations

from tests.bench import bench_ota


def test_bench_ota_rolls_out_to_every_unit(capsys) -> None:
    rows = bench_ota.run(5, 64, 0.5)
    table = capsys.readouterr().out
    baseline, rollout = rows
    assert (baseline.phase, rollout.phase) == ("baseline", "rollout")
    assert baseline.tuf_bytes == 0  # nothing to fetch without a rollout
    assert rollout.updates == 5 and rollout.tuf_bytes > 5 * 64 * 1024  # each unit got v2
    assert rollout.rss_mib > 0 and rollout.cpu_s > 0
    assert "CPU ms/update" in table
