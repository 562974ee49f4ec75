"""Smoke run of the buffer benchmark (quick mode): delivery facts, never timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.bench_buffer import (
    Results,
    bench_crash_real,
    bench_drain_http_real,
    bench_drain_mqtt_real,
    bench_outage_real,
    main,
    report,
)


@pytest.mark.mqtt
def test_quick_buffer_bench_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    res = main(["--quick"])
    printed = capsys.readouterr().out
    assert "| batch |" in printed and "| transport |" in printed
    assert [c["batch"] for c in res.commit] == [1, 4, 32]
    assert all(c["buffer_eps"] > 0 and c["plain_eps"] > 0 for c in res.commit)
    assert {d["transport"] for d in res.drain} == {"http", "mqtt"}
    for d in res.drain:
        assert d["all_once"] and d["stored"] == d["events"], d["transport"]
    assert res.crash["committed"] > 0
    assert res.crash["lost"] == 0 and res.crash["cloud_duplicates"] == 0
    assert res.crash["gaps"] == 0
    o = res.outage
    assert o["backlog"] > 100 and o["failures_while_down"] > 0
    assert o["all_once"] and o["historical_in_order"]
    assert 0 < o["historical"] <= o["backlog"]


@pytest.mark.mqtt
def test_real_cloud_parts_of_the_bench_lose_nothing(tmp_path: Path) -> None:
    """The ``--cloud real`` measurements at small sizes: delivery facts only."""
    drains = [bench_drain_http_real(tmp_path, 1500), bench_drain_mqtt_real(tmp_path, 1500)]
    for d in drains:
        assert d is not None
        assert d["all_once"] and d["stored"] == d["events"] and d["rejected"] == 0
    crash = bench_crash_real(tmp_path, 2)
    assert crash["committed"] > 0 and crash["seq_backwards"] == 0
    assert crash["lost"] == 0 and crash["cloud_duplicates"] == 0 and crash["gaps"] == 0
    o = bench_outage_real(tmp_path, 0.5, 400)
    assert o["backlog"] > 50 and o["failures_while_down"] > 0 and o["rejected"] == 0
    assert o["all_once"] and o["historical_in_order"]
    assert 0 < o["historical"] <= o["backlog"]
    res = Results(drain=[d for d in drains if d], crash=crash, outage=o, cloud="real")
    assert "| mqtt | real |" in report(res)
