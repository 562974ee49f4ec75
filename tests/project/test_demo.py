"""``shelfsense demo`` runs the real loop on the simulator and reports what it found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firmware_bridge.sim.truth import TruthChange
from models.types import WeightChange
from shelfsense.cli import main
from shelfsense.demo import pair_changes


def test_pairing_is_one_to_one_by_slot_and_time() -> None:
    truth = [
        TruthChange(slot=1, t_start=10, t_end=12, grams=-300, units=-1, kind="removal"),
        TruthChange(slot=2, t_start=10, t_end=12, grams=-600, units=-2, kind="removal"),
    ]
    found = [
        WeightChange(slot=1, grams=-299, units=-1, t_start=10, t_settled=13, confidence=0.9),
        WeightChange(slot=1, grams=-300, units=-1, t_start=50, t_settled=52, confidence=0.9),
    ]
    pairs = pair_changes(truth, found)
    assert [(p.truth is not None, p.found is not None) for p in pairs] == [
        (True, True),
        (True, False),
        (False, True),
    ]


def test_demo_runs_weight_and_camera(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--minutes", "3", "--seed", "3", "--rows", "100", "--no-loop"]) == 0
    out = capsys.readouterr().out
    assert "== Weight" in out and "== Camera" in out
    m = re.search(r"own SKUs: (\d+), found (\d+), exact unit count (\d+)", out)
    assert m is not None
    assert int(m.group(2)) == int(m.group(1)) == int(m.group(3))
    assert re.search(r"\d+ presence episodes found", out)
    assert "presence" in out and "weight" in out


@pytest.mark.slow(seconds=160)
@pytest.mark.timeout(900)  # a hang guard: 150 to 300 s alone on 2 shared cores
def test_demo_loop_trains_serves_and_syncs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--minutes", "2", "--seed", "3", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "== Model" in out and "== Cloud" in out and "== Unit" in out
    m = re.search(r"(\d+) events committed on the unit and stored once in the cloud", out)
    assert m is not None and int(m.group(1)) > 0
    shown = re.findall(r"^   #(\d+) ", out, flags=re.M)
    assert [int(s) for s in shown] == list(range(1, int(m.group(1)) + 1))
    beside = re.findall(r"^   #\d+ .* truth: ", out, flags=re.M)
    assert len(beside) == len(shown)  # the twin's truth beside each event
    assert re.search(r"stock +labels right: (\d+/\d+ \(\d+ %\)|-)$", out, flags=re.M)
    assert re.search(r"against the truth: \d+/\d+ SKUs agree", out)
    assert "interest per SKU the backend reads" in out
    deciders = set(re.findall(r"\[(model|rules)\]$", out, flags=re.M))
    # the outcome follows the gates as printed, one way or the other
    gates = re.findall(r"^   \[(x| )\] ", out, flags=re.M)
    assert gates, "every gate is shown with its verdict"
    refused = gates.count(" ")
    if refused:  # a refused student is said out loud, and no bundle is installed
        said = re.search(r"FELL BACK TO THE RULES: (\d+) gate\(s\) above refused", out)
        assert said is not None and int(said.group(1)) == refused
        assert "signed bundle:" not in out
        assert deciders == {"rules"}
    else:  # every gate passed: a signed bundle, and the model decides
        assert "signed bundle:" in out and "FELL BACK" not in out
        # its guard may hand crowded stock to the rules
        assert "model" in deciders and deciders <= {"model", "rules"}
