"""Store staff calibrating a bay at the terminal, against load cells served on a pty.

The bench bay stands in for the shelf: the test, acting as the person, puts known
weights on it between the wizard's prompts, and the wizard reads the bay through the
same serial link the agent uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.signals.calibration import CalibrationStore
from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.sim.bench import SimBay
from tests.support.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]
SLOTS = [(0, 0, "SKU-A"), (1, 1, "SKU-B"), (2, 2, "SKU-C")]


@pytest.fixture
def bay() -> Iterator[tuple[SimBay, PtyMcu]]:
    bench = SimBay(4, sps=80, seed=5)
    with PtyMcu(bench.blocks(0.05), realtime=True, sps=80, record=False) as mcu:
        yield bench, mcu


def unit_config(tmp_path: Path, port: str) -> Path:
    slots = "".join(
        f'[[slots]]\nslot = {s}\nchannel = {c}\nsku = "{sku}"\nunit_grams = 250\n\n'
        for s, c, sku in SLOTS
    )
    cfg = tmp_path / "unit.toml"
    cfg.write_text(
        f'[unit]\ndata_dir = "{tmp_path / "var"}"\n\n'
        f'[loadcells]\nsource = "serial"\nserial_port = "{port}"\n\n' + slots
    )
    return cfg


def walk_wizard(term: Terminal, bench: SimBay) -> None:
    """A person at the wizard: empty, 500 g (once on the wrong slot), a check weight on slot 0."""
    term.expect("Calibrating 3 slot(s)")
    for slot, channel, _ in SLOTS:
        term.expect(f"Slot {slot}: take everything off the tray, then press Enter.")
        term.type("")
        term.expect("Known weight in grams:")
        term.type("500")
        term.expect("place 500 g on the tray")
        if slot == 1:  # first the weight lands on the neighbouring slot
            bench.place(2, 500)
            term.type("")
            shown = term.expect("Press Enter to try again")
            assert "another slot (channel 2)" in shown
            bench.remove(2, 500)
            term.type("")
            term.expect("place 500 g on the tray")
        bench.place(channel, 500)
        term.type("")
        term.expect("Second weight to check, grams (Enter to skip):")
        if slot == 0:
            term.type("200")
            term.expect("place 200 g on the tray")
            bench.remove(channel, 300)
            term.type("")
            shown = term.expect("for 200 g.")
            read = re.search(r"Check: reads (-?[0-9.]+) g", shown)
            assert read is not None and abs(float(read.group(1)) - 200) <= 1.0
            bench.place(channel, 300)
        else:
            term.type("")
        term.expect(f"Slot {slot} calibrated")
    term.expect("Done: 3 of 3 slot(s) calibrated")


def assert_within_a_gram_at_500(bench: SimBay, data_dir: Path) -> None:
    """Each slot carries 500 g on its tray: the saved calibration reads it within 1 g."""
    cals = CalibrationStore(data_dir / "calibration.json").load()
    assert sorted(cals) == [c for _, c, _ in SLOTS]
    tray = 250.0
    for _, channel, _ in SLOTS:
        fresh = bench.read(160)
        truth = bench.truth(channel) - tray
        assert truth == 500
        assert abs(cals[channel].grams(float(np.mean(fresh.counts[:, channel]))) - truth) <= 1.0


@pytest.mark.slow(seconds=12)
def test_staff_calibrate_three_slots_at_the_terminal(
    bay: tuple[SimBay, PtyMcu], tmp_path: Path
) -> None:
    bench, mcu = bay
    cfg = unit_config(tmp_path, mcu.path)
    term = Terminal(
        ["provision", "calibrate", "--config", str(cfg), "--seconds", "1"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    try:
        walk_wizard(term, bench)
        assert term.wait() == 0
    finally:
        term.close()
    assert_within_a_gram_at_500(bench, tmp_path / "var")


def test_a_script_calibrates_one_slot_in_two_steps(
    bay: tuple[SimBay, PtyMcu], tmp_path: Path
) -> None:
    bench, mcu = bay
    cfg = unit_config(tmp_path, mcu.path)
    base = ["provision", "calibrate", "--config", str(cfg), "--seconds", "1", "--slot", "2"]
    env = {"PYTHONPATH": str(ROOT)}

    def run(*extra: str) -> tuple[int, str]:
        term = Terminal([*base, *extra], cwd=ROOT, env=env)
        try:
            code = term.wait(60)
        finally:
            term.close()
        return code, term.screen

    code, shown = run("--known-grams", "500")
    assert code == 1 and "--slot 2 --tare first" in shown
    assert run("--tare")[0] == 0
    code, shown = run("--known-grams", "500")  # nothing placed yet
    assert code == 1 and "Nothing seems to have been placed" in shown
    bench.place(2, 500)
    code, shown = run("--known-grams", "500")
    assert code == 0, shown
    cal = CalibrationStore(tmp_path / "var" / "calibration.json").load()[2]
    fresh = bench.read(160)
    assert abs(cal.grams(float(np.mean(fresh.counts[:, 2]))) - 500) <= 1.0
