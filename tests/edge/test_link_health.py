"""The load-cell link tells the truth about itself, up to the cloud.

The simulator poses as the MCU on a real pseudo-terminal; the agent reads it with
``loadcells.source = "serial"`` and syncs over HTTP to the real cloud app. While
frames flow the link is ``ok``; when the MCU goes silent, and then when the port
disappears (unplugged), the agent's health says the link is down and the
``loadcell_link_down`` alarm reaches ``GET /v1/devices/{id}/health``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.keys import Role
from cloud.settings import build_settings
from edge.agent import Agent
from edge.config import parse_config
from edge.signals.calibration import CalibrationStore
from edge.signals.replay import simulated_calibration
from edge.sync.identity import Identity
from edge.workers.build import CALIBRATION_FILE, add_sensing
from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import load_scenario
from firmware_bridge.sim.twin import StoreTwin
from tests.cloud.support import Live, make_key, register_unit, serve
from tests.support.waiting import wait_until

DEVICE, STORE, BAY = "unit-link", "store-1", "bay-1"
STREAM_S = 6.0
DOWN_WITHIN_S = 15.0  # upper bound for the condition, never a measured figure


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    s = build_settings(database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0)
    with serve(s) as running:
        yield running


def test_silent_then_unplugged_port_turns_link_health_down_and_the_alarm_reaches_the_cloud(
    tmp_path: Path, live: Live
) -> None:
    sc = load_scenario("busy")
    run = StoreTwin(sc, 3).simulate(STREAM_S)
    CalibrationStore(tmp_path / CALIBRATION_FILE).save(
        simulated_calibration(LoadCellSim(run, sc, 3))
    )
    token = register_unit(live.store, DEVICE, store_id=STORE, bay=BAY)
    op = live.client(make_key(live.store, Role.OPERATOR))

    def cloud_health() -> dict[str, Any] | None:
        r = op.get(f"/v1/devices/{DEVICE}/health")
        return r.json() if r.status_code == 200 else None

    def link(state: str) -> bool:
        got = cloud_health()
        if got is None:
            return False
        comp = got["report"]["components"].get("loadcell_link", {})
        return str(comp.get("detail", "")).startswith(f"{state}:")

    mcu = PtyMcu(LoadCellSim(run, sc, 3).blocks(0.5), realtime=True, sps=sc.sps, record=False)
    mcu.start()
    cfg = parse_config(
        {
            "unit": {"device_id": DEVICE, "data_dir": str(tmp_path), "store": STORE, "bay": BAY},
            "slots": [
                {"slot": s.slot, "channel": s.channel, "sku": s.sku, "unit_grams": s.unit_grams}
                for s in sc.slots
            ],
            "loadcells": {"source": "serial", "serial_port": mcu.path, "read_timeout_s": 0.2},
            "sync": {"mode": "http", "base_url": live.url, "idle_s": 0.05},
            "health": {"interval_s": 0.2},
        }
    )
    agent = Agent(cfg, identity=Identity(device_id=DEVICE, api_key=token))
    add_sensing(agent, camera=False)
    agent.start()
    try:
        wait_until(lambda: link("ok"), timeout=DOWN_WITHIN_S)
        assert "loadcell_link_down" not in cloud_health()["alarms"]  # type: ignore[index]
        # the stream ends, the port stays open: silent
        wait_until(lambda: link("silent"), timeout=DOWN_WITHIN_S + STREAM_S)
        got = cloud_health()
        assert got is not None and "loadcell_link_down" in got["alarms"]
        assert {"loadcell_link", "loadcells"} <= set(got["down"])
        assert agent.health.alarmed("loadcell_link_down")
        # the MCU is unplugged: the device goes away
        mcu.stop()
        wait_until(lambda: link("unplugged"), timeout=DOWN_WITHIN_S)
        got = cloud_health()
        assert got is not None and "loadcell_link_down" in got["alarms"]
        assert got["report"]["alarms"]["loadcell_link_down"]["detail"].startswith("unplugged")
    finally:
        agent.stop()
        mcu.stop()
