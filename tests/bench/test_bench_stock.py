"""The stock benchmark: its truth side on a constructed day, and a smoke run of a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware_bridge.sim.truth import SensorFault, TruthChange
from firmware_bridge.sim.twin import SimRun
from tests.bench import bench_stock
from tests.bench.stock_diagnosis import diagnose
from tests.bench.stock_model import decisions


def _run() -> SimRun:
    run = SimRun("constructed", 1, 600.0)
    run.initial_units = {0: 2, 1: 5}
    run.changes = [
        TruthChange(0, 100.0, 104.0, -200.0, -2, "removal", 1, "A"),  # slot 0 empty from 104 s
        TruthChange(1, 130.0, 133.0, 330.0, 1, "misplaced", 2, "C"),  # a foreign jar: not stock
        TruthChange(0, 290.0, 296.0, 600.0, 6, "restock", 3, "A"),
        TruthChange(1, 400.0, 401.0, 50.0, 0, "sensor_fault"),
    ]
    return run


def _fig(slot: int, t: float, units: int, kind: str = "stock", label: str = "removal") -> dict:
    return {"slot": slot, "mono_time": t, "stock_units": units, "kind": kind, "label": label}


def test_truth_counts_own_units_only_and_skips_settling_minutes() -> None:
    run = _run()
    perfect = [
        _fig(0, 1.0, 2, "level", "low"),
        _fig(1, 1.0, 5, "level", "ok"),
        _fig(0, 105.0, 0),
        _fig(0, 105.0, 0, "level", "out"),
        _fig(1, 134.0, 5, label="misplaced"),
        _fig(0, 297.0, 6, label="restock"),
    ]
    sc = bench_stock.score(perfect, run)
    # 10 minutes x 2 slots; minute 5 (300 s) of slot 0 is within the grace after the restock
    assert (sc.scored, sc.exact, sc.abs_err) == (19, 19, 0)
    assert (sc.false_out, sc.missed_out, sc.stockouts, sc.delays) == (0, 0, 1, [1.0])
    # the misplaced jar counted as stock shows; a figure late within the grace does not
    wrong = [*perfect[:4], _fig(1, 134.0, 6, label="misplaced"), _fig(0, 301.0, 6)]
    sc = bench_stock.score(wrong, run)
    assert sc.exact == 19 - 8 - 0 and sc.abs_err == 8  # slot 1 minutes 3..10 off by one
    # ... and the diagnosis puts them on the jar (330 g on a 330 g-unit slot: one unit)
    causes = diagnose(wrong, run, bench_stock.GRACE_S, {0: 100.0, 1: 330.0})
    assert causes == {"misplaced-as-stock": 8}
    assert diagnose(perfect, run, bench_stock.GRACE_S) == {}


def test_the_diagnosis_tells_unsettled_from_faults_and_missing_figures() -> None:
    run = _run()
    run.faults = [SensorFault(1, 1, "offset_jump", 400.0, 400.5, 60.0)]
    figs = [_fig(0, 1.0, 2, "level", "low"), _fig(1, 1.0, 4, "level", "ok")]
    causes = diagnose(figs, run, bench_stock.GRACE_S, {0: 100.0, 1: 330.0})
    # slot 0 never follows its removal (2 min) and restock: unsettled the minute after the
    # removal, other from then on; slot 1 is one short all along: unsettled the minutes
    # after the jar and the fault, the fault's own from minute 8, other before
    assert causes == {"unsettled": 3, "calibration/drift": 3, "other": 12}


def test_the_before_count_moves_by_label_and_size() -> None:
    run = _run()
    events = [_fig(0, 105.0, 0), {**_fig(1, 134.0, 0, label="removal"), "units": 1}]
    events[0]["units"] = -2
    old = bench_stock.before_figures(events, run)
    assert [e["stock_units"] for e in old] == [0, 4]  # +1 booked as a removal: down one


def test_bench_stock_quick(capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_stock.main(["--quick"])
    after = result["busy"]["after"]
    assert after.scored > 0 and after.exact > 0
    assert "| busy | after: from the scale |" in capsys.readouterr().out


def test_decisions_count_who_decided_and_what_the_book_relabelled() -> None:
    events: list[dict[str, Any]] = [
        {"kind": "stock", "decided_by": "model", "features": {}},
        {"kind": "stock", "decided_by": "rules", "features": {"decided": "misplaced"}},
        {"kind": "level", "decided_by": "model", "features": {"decided": "x"}},
        {"kind": "interest", "decided_by": "model"},
    ]
    d = decisions(events)
    assert (d.stock, d.by_model, d.by_rules, d.relabelled) == (2, 1, 1, 1)
    assert d.cells() == "2 | 1 | 1 | 1 (50.0 %)"


def test_bench_stock_quick_with_a_given_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.bundle import public_key_pem
    from tests.models.conftest import build_bundle

    built = build_bundle(tmp_path)  # a random tiny student: it decides, whatever it says
    pub = tmp_path / "trusted.pem"
    pub.write_bytes(public_key_pem(built.key))
    result = bench_stock.main(["--quick", "--bundle", str(built.path), "--key", str(pub)])
    assert result["busy"]["model"].scored == result["busy"]["after"].scored > 0
    out = capsys.readouterr().out
    assert "| busy | model: from the scale |" in out
    model_row = next(line for line in out.splitlines() if line.startswith("| busy | model | "))
    assert int(model_row.split("|")[4]) > 0  # stock events decided by the model
