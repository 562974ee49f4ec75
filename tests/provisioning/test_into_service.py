"""A unit put into service by a person at its terminal, against the real cloud.

Claim with an operator's code, calibrate three slots with a known weight on the bench
bay (served as the MCU on a pty), then ``--check-config`` finds the unit ready under
its new identity, the cloud holds the calibration, and once the agent runs, a product
taken off a slot reaches the cloud's event feed under the unit's new device id (and
``edge watch`` shows it sent).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cloud.keys import Role
from edge.health import STATUS_FILE
from edge.signals.calibration import CalibrationStore
from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.sim.bench import SimBay
from tests.cloud.support import Live, make_key
from tests.provisioning.test_calibrate_terminal import (  # noqa: F401 (fixture)
    ROOT,
    SLOTS,
    assert_within_a_gram_at_500,
    bay,
    unit_config,
    walk_wizard,
)
from tests.provisioning.test_claim import cloud, make_code  # noqa: F401 (fixture)
from tests.support.terminal import Terminal
from tests.support.waiting import wait_until

ENV = {"PYTHONPATH": str(ROOT)}


def at_terminal(*args: str) -> Terminal:
    return Terminal(list(args), cwd=ROOT, env=ENV)


def stock_events(live: Live, device_id: str) -> list[dict[str, object]]:
    with live.client(make_key(live.store, Role.BACKEND)) as c:
        feed = c.get("/v1/events", params={"store": "store-7", "type": "stock"}).json()
    return [e for e in feed["data"] if e["device_id"] == device_id]


@pytest.mark.slow(seconds=30)
def test_claim_then_calibrate_at_the_terminal_puts_the_unit_into_service(
    cloud: Live,  # noqa: F811
    bay: tuple[SimBay, PtyMcu],  # noqa: F811
    tmp_path: Path,
) -> None:
    bench, mcu = bay
    cfg = unit_config(tmp_path, mcu.path)
    cfg.write_text(cfg.read_text() + "[health]\ninterval_s = 1\n")
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
        term.expect("Calibration of 3 slot(s) reported to the cloud.")
        assert term.wait() == 0
    finally:
        term.close()
    assert_within_a_gram_at_500(bench, tmp_path / "var")

    # the cloud holds what the unit saved: per slot its zero, scale, known and check weights
    saved = CalibrationStore(tmp_path / "var" / "calibration.json").load()
    with cloud.client(make_key(cloud.store, Role.OPERATOR)) as c:
        unit = c.get(f"/v1/devices/{device_id}").json()
    reported = {s["slot"]: s for s in unit["calibration"]["slots"]}
    assert sorted(reported) == [s for s, _, _ in SLOTS]
    for slot, channel, sku in SLOTS:
        r = reported[slot]
        assert (r["channel"], r["sku"], r["known_grams"]) == (channel, sku, 500)
        assert np.isclose(r["counts_per_gram"], saved[channel].counts_per_gram)
        assert np.isclose(r["offset_counts"], saved[channel].offset_counts)
    assert reported[0]["check_grams"] == 200 and abs(reported[0]["check_read_grams"] - 200) <= 1
    assert reported[1]["check_grams"] is None

    term = at_terminal("edge", "run", "--config", str(cfg), "--check-config")
    try:
        term.expect("config OK")
        assert device_id in term.expect("store-7/bay-2")
        term.expect("slots    3, load cells from serial")
        assert term.wait() == 0
    finally:
        term.close()

    agent = at_terminal("edge", "run", "--config", str(cfg), "--no-camera")
    try:
        # the agent reports to the cloud and reads the shelf a while ...
        wait_until(lambda: bool(agent_heard(cloud, device_id)), timeout=60)
        wait_until(lambda: link_frames(tmp_path / "var") >= 240, timeout=60)
        bench.remove(0, 250)  # ... then one SKU-A (250 g) is taken off slot 0
        wait_until(
            lambda: any(
                e["label"] == "removal" and e["units"] == -1 and e["slot"] == 0
                for e in stock_events(cloud, device_id)
            ),
            timeout=90,
        )
        # what staff see at the unit: the removal, sent (once the cloud's ack is in)
        wait_until(lambda: watch_shows_removal_sent(cfg), timeout=60)
    finally:
        agent.close()
    mine = stock_events(cloud, device_id)
    assert all(e["bay_id"] == "bay-2" for e in mine), mine


def watch_shows_removal_sent(cfg: Path) -> bool:
    """``edge watch --once`` lists the removal with the cloud having it."""
    view = at_terminal("edge", "watch", "--config", str(cfg), "--once")
    try:
        assert view.wait() == 0
    finally:
        view.close()
    return any("stock: removal" in r and "yes" in r for r in view.screen.splitlines())


def link_frames(data_dir: Path) -> int:
    """Frames the running agent has read from the load-cell link (its status file)."""
    try:
        status = json.loads((data_dir / STATUS_FILE).read_text())
        return int(status["gauges"]["loadcell_link"]["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def agent_heard(live: Live, device_id: str) -> object:
    """The cloud has a health report of the unit: its agent runs under the new identity."""
    with live.client(make_key(live.store, Role.OPERATOR)) as c:
        return c.get(f"/v1/devices/{device_id}").json().get("health_at")
