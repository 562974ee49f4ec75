"""Interest per SKU end to end: a simulated unit's busy minutes to the cloud's ``/v1/interest``.

The agent plays the store twin in process (sim load cells and camera, the rules
deciding) and syncs over HTTP to the real app; the backend then reads interest per
SKU per hour and per bay, and the figures are held against what the twin's shoppers did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.ingest import highest_contiguous
from cloud.keys import Role
from firmware_bridge.sim.scenario import load_scenario
from tests.cloud.support import Live, make_key, register_unit
from tests.edge.agent_support import BAY, DEVICE, STORE, run_in_process


class _Acks:
    def __init__(self, live: Live) -> None:
        self.live = live

    def highest_contiguous(self, device_id: str) -> int:
        return highest_contiguous(self.live.store, device_id)


def test_a_simulated_units_episodes_reach_the_cloud_per_sku_and_per_bay(
    live: Live, tmp_path: Path
) -> None:
    token = register_unit(live.store, DEVICE, store_id=STORE, bay=BAY)
    _agent, sensing = run_in_process(tmp_path / "unit", _Acks(live), live.url, api_key=token)
    be = live.client(make_key(live.store, Role.BACKEND))
    since = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    got = be.get("/v1/interest", params={"store": STORE, "since": since}).json()

    skus = {s.slot: s.sku for s in load_scenario("busy").slots}
    assert got["count"] > 0
    assert {d["sku"] for d in got["data"]} <= set(skus.values())
    assert all(d["episodes"] == sum(d["counts"].values()) for d in got["data"])
    bays = {b["hour"]: b for b in got["bays"]}  # the run may straddle an hour
    assert {b["bay_id"] for b in bays.values()} == {BAY}
    assert 0 < sum(b["reached"] for b in bays.values()) <= sum(b["episodes"] for b in bays.values())
    # every SKU a shopper of the twin handled (touched or took) shows interest
    run = sensing.run
    assert run is not None
    handled = {
        skus[e.slot] for e in run.episodes if e.intent in ("touch", "take") and e.slot is not None
    }
    assert handled and handled <= {d["sku"] for d in got["data"]}
    # per SKU, never more episodes than the bay saw in that hour
    assert all(d["episodes"] <= bays[d["hour"]]["episodes"] for d in got["data"])
