"""Smoke run of the buffer benchmark (quick mode): delivery facts, never timing."""

from __future__ import annotations

import pytest

from tests.bench.bench_buffer import (
    main,
    report,
)


@pytest.mark.slow(seconds=10)
@pytest.mark.mqtt
def test_quick_buffer_bench_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    res = main(["--quick"])
    printed = capsys.readouterr().out
    assert "| batch |" in printed and "| transport |" in printed
    assert [c["batch"] for c in res.commit] == [1, 4, 32]
    assert all(c["buffer_eps"] > 0 and c["plain_eps"] > 0 for c in res.commit)
    assert {d["transport"] for d in res.drain} == {"http, posts only", "http", "mqtt"}
    for d in res.drain:
        assert d["all_once"] and d["stored"] == d["events"], d["transport"]
        assert d["rejected"] == 0, d["transport"]
    assert res.crash["committed"] > 0 and res.crash["seq_backwards"] == 0
    assert res.crash["lost"] == 0 and res.crash["cloud_duplicates"] == 0
    assert res.crash["gaps"] == 0 and res.crash["rejected"] == 0
    o = res.outage
    assert o["backlog"] > 50 and o["failures_while_down"] > 0 and o["rejected"] == 0
    assert o["all_once"] and o["historical_in_order"]
    assert 0 < o["historical"] <= o["backlog"]
    assert "| mqtt |" in report(res) and "vs posts only" in printed
