"""``shelfsense sim``: a run written to disk with its truth, and the sim as the MCU on a pty."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.serial_link import SerialLoadCells
from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import load_scenario
from firmware_bridge.sim.store import load_truth
from firmware_bridge.sim.twin import StoreTwin
from shelfsense.cli import main


def test_sim_run_writes_counts_truth_and_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    rc = main(
        ["sim", "run", "--scenario", "busy", "--seed", "4", "--duration", "300", "--out", str(out)]
    )
    assert rc == 0
    assert str(out) in capsys.readouterr().out
    sc = load_scenario("busy")
    expected = StoreTwin(sc, 4).simulate(300)
    assert load_truth(out) == expected
    assert load_scenario(out / "scenario.toml") == sc
    data = np.load(out / "counts.npz")
    assert data["counts"].shape == (300 * 80, sc.channels)
    assert int(data["sps"]) == 80
    _, counts, valid = LoadCellSim(expected, sc, 4).arrays()
    np.testing.assert_array_equal(data["counts"], counts)
    np.testing.assert_array_equal(data["valid"], valid)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 4 and manifest["counts"]["changes"] == len(expected.changes)
    assert not list(out.glob(".*tmp"))


def test_sim_run_refuses_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nwat = 1\n')
    rc = main(["sim", "run", "--scenario", str(bad), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "wat" in err


def test_sim_serial_serves_the_scenario_on_a_pty() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shelfsense",
            "sim",
            "serial",
            "--scenario",
            "quiet",
            "--seed",
            "3",
            "--fast",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        got = []
        deadline = time.monotonic() + 20
        with SerialLoadCells(path, timebase="mcu") as link:
            for block in link.blocks(1.0, until=lambda: time.monotonic() > deadline):
                got.append(block.counts)
                if sum(len(c) for c in got) >= 400:
                    break
        counts = np.concatenate(got)[:400]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    sc = load_scenario("quiet")
    sim = LoadCellSim(StoreTwin(sc, 3).simulate(86_400), sc, 3)
    expected = next(iter(sim.blocks(5.0))).counts[:400]
    np.testing.assert_array_equal(counts, expected)
