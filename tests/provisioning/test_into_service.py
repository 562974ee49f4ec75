"""A unit put into service by a person at its terminal, against the real cloud.

Claim with an operator's code, calibrate three slots with a known weight on the bench
bay (served as the MCU on a pty), then ``--check-config`` finds the unit ready under
its new identity.
"""

from __future__ import annotations

from pathlib import Path

from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.sim.bench import SimBay
from tests.cloud.support import Live
from tests.provisioning.test_calibrate_terminal import (  # noqa: F401 (fixture)
    ROOT,
    assert_within_a_gram_at_500,
    bay,
    unit_config,
    walk_wizard,
)
from tests.provisioning.test_claim import cloud, make_code  # noqa: F401 (fixture)
from tests.support.terminal import Terminal

ENV = {"PYTHONPATH": str(ROOT)}


def at_terminal(*args: str) -> Terminal:
    return Terminal(list(args), cwd=ROOT, env=ENV)


def test_claim_then_calibrate_at_the_terminal_makes_the_unit_ready(
    cloud: Live,  # noqa: F811
    bay: tuple[SimBay, PtyMcu],  # noqa: F811
    tmp_path: Path,
) -> None:
    bench, mcu = bay
    cfg = unit_config(tmp_path, mcu.path)
    code = str(make_code(cloud)["code"])

    term = at_terminal("provision", "claim", code, "--cloud", cloud.url, "--config", str(cfg))
    try:
        shown = term.expect("the code is used up")
        assert term.wait() == 0
    finally:
        term.close()
    device_id = shown.split("this unit is ")[1].split()[0]

    term = at_terminal("provision", "calibrate", "--config", str(cfg), "--seconds", "1")
    try:
        walk_wizard(term, bench)
        assert term.wait() == 0
    finally:
        term.close()
    assert_within_a_gram_at_500(bench, tmp_path / "var")

    term = at_terminal("edge", "run", "--config", str(cfg), "--check-config")
    try:
        term.expect("config OK")
        assert device_id in term.expect("store-7/bay-2")
        term.expect("slots    3, load cells from serial")
        assert term.wait() == 0
    finally:
        term.close()
