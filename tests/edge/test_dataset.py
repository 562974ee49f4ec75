"""Training windows from the real pipeline: simulator -> signals -> camera -> windows -> labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.dataset import _match_changes, simulate_dataset
from firmware_bridge.sim.truth import TruthChange
from models.dataset import read_jsonl
from models.labels import INTEREST_LABELS, STOCK_LABELS
from models.types import WeightChange
from shelfsense.cli import main


@pytest.fixture(scope="module")
def busy() -> tuple[list, object]:
    return simulate_dataset("busy", 5, 240.0)


def test_windows_come_from_the_pipeline_and_carry_truth_only_as_labels(busy) -> None:
    records, stats = busy
    assert stats.windows == len(records) > 5
    assert stats.detected_changes > 0 and stats.matched_changes > 0
    for r in records:
        assert r.interest is None or r.interest in INTEREST_LABELS
        assert all(s in STOCK_LABELS for s in r.stock_labels)
        assert len(r.stock_labels) == len(r.window.changes)
    assert any(r.interest is not None for r in records)


def test_changes_match_truth_by_slot_and_time() -> None:
    truth = [
        TruthChange(0, 10.0, 11.0, -200.0, -2, "removal"),
        TruthChange(1, 10.0, 11.0, 50.0, 1, "misplaced"),
    ]
    a = WeightChange(0, -198.0, -2, 10.5, 12.0, 0.9)
    b = WeightChange(1, 51.0, 1, 30.0, 31.0, 0.9)  # too late for the truth change
    c = WeightChange(0, -199.0, -2, 11.0, 12.0, 0.9)  # truth change already used by a
    labels = _match_changes([a, b, c], truth)
    assert [labels[id(x)] for x in (a, b, c)] == ["removal", "none", "none"]


def test_sim_dataset_command_writes_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w.jsonl"
    assert (
        main(
            [
                "sim",
                "dataset",
                "--scenario",
                "quiet",
                "--seed",
                "2",
                "--hours",
                "0.02",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    recs = read_jsonl(out)
    assert f"wrote {len(recs)} windows" in capsys.readouterr().out
