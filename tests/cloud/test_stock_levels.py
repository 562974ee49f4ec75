"""Every registered SKU's stock reaches the backend: a unit's level report, over real HTTP.

A real agent (buffer, HTTP sync) reports the levels its scale reads at start; the cloud
under uvicorn answers ``/v1/stock/skus`` with every SKU registered on a slot, the
untouched ones included, and ``null`` for an SKU no unit has reported.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from cloud import fleet
from cloud.keys import Role
from cloud.schemas import SlotCreate
from edge.agent import Agent
from edge.config import parse_config
from edge.events import Origin
from edge.stock import StockBook
from edge.sync.identity import Identity
from edge.windows import Windower
from edge.workers.decide import RulesDecider
from edge.workers.decision import DecisionWorker, LevelReports
from edge.workers.timeline import Inbox
from tests.cloud.support import Live, make_key, register_unit
from tests.support.waiting import wait_until

SLOTS = {0: ("CRISPS-150", 150.0), 1: ("SPICE-60", 60.0), 2: ("SAUCE-330", 330.0)}


def _skus(be: httpx.Client) -> dict[str, tuple[int | None, int, int]]:
    data = be.get("/v1/stock/skus").json()["data"]
    return {s["sku"]: (s["stock_units"], s["slots"], s["reported_slots"]) for s in data}


def test_a_level_report_reaches_stock_skus_for_an_untouched_sku(live: Live, tmp_path: Path) -> None:
    token = register_unit(live.store, "unit-1")
    with live.store.writer.begin() as conn:
        for n, (sku, grams) in SLOTS.items():
            fleet.add_slot(conn, "store-1", "bay-1", SlotCreate(slot=n, sku=sku, unit_grams=grams))
        fleet.add_slot(conn, "store-1", "bay-1", SlotCreate(slot=5, sku="TEA-80", unit_grams=80.0))
    be = live.client(make_key(live.store, Role.BACKEND))
    before = _skus(be)
    assert before["TEA-80"] == (None, 1, 0) and before["SPICE-60"] == (None, 1, 0)

    config = parse_config(
        {
            "unit": {"device_id": "unit-1", "data_dir": str(tmp_path)},
            "slots": [
                {"slot": n, "channel": n, "sku": sku, "unit_grams": g, "capacity": 30}
                for n, (sku, g) in SLOTS.items()
            ],
            "sync": {"mode": "http", "base_url": live.url, "idle_s": 0.05},
            "health": {"interval_s": 0.2},
        }
    )
    agent = Agent(config, identity=Identity(device_id="unit-1", api_key=token))
    box = Inbox(["weight"])
    slots = list(config.slots)
    decisions = DecisionWorker(
        box,
        Windower("bay-1", {n: g for n, (_, g) in SLOTS.items()}),
        RulesDecider(),
        StockBook(slots, config=config.stock),
        Origin("store-1", "bay-1", {n: sku for n, (sku, _) in SLOTS.items()}),
        agent.emit,
        health=agent.health,
        tick_s=0.5,
        reports=LevelReports(config.stock.report_interval_s),
    )
    # what the scale reads on a bay nobody has touched: 12 crisps, 25 spice jars, 12 sauces
    box.put_levels(2.0, {0: 12 * 150.0 + 4.0, 1: 25 * 60.0 - 3.0, 2: 12 * 330.0 + 9.0})
    box.put_changes([], 2.0)
    agent.start()
    try:
        decisions.step()
        wait_until(lambda: _skus(be)["SPICE-60"][0] is not None, timeout=30)
    finally:
        agent.stop()
    after = _skus(be)
    assert after == {
        "CRISPS-150": (12, 1, 1),
        "SPICE-60": (25, 1, 1),
        "SAUCE-330": (12, 1, 1),
        "TEA-80": (None, 1, 0),  # registered on a slot no unit weighs yet
    }
