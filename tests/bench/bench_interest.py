"""Interest per SKU from the cloud against the store twin's truth.

A simulated unit (sim load cells and camera, the rules deciding) plays ``--hours``
of each of ``--scenarios`` (default ``busy``) in process and syncs over HTTP to the real
cloud app on SQLite (a fresh one per scenario); the
backend's ``/v1/interest`` is then held, per SKU and class, against what the twin's
shoppers did. The truth attributes a shopper episode to the slot the shopper
attended, the slots whose stock they changed and the slot zones they reached, as
a unit attributes what it saw. Staff visits are not interest.

Run: ``.venv/bin/python -m tests.bench.bench_interest [--hours 1] [--scenarios busy,heldout]``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.ingest import highest_contiguous
from cloud.keys import Role
from cloud.settings import build_settings
from firmware_bridge.sim.scenario import load_scenario
from firmware_bridge.sim.twin import SimRun
from tests.cloud.support import Live, make_key, register_unit, serve
from tests.edge.agent_support import BAY, DEVICE, STORE, run_in_process


class _Acks:
    def __init__(self, live: Live) -> None:
        self.live = live

    def highest_contiguous(self, device_id: str) -> int:
        return highest_contiguous(self.live.store, device_id)


def truth_per_sku(run: SimRun, skus: dict[int, str]) -> dict[str, Counter[str]]:
    """Shopper episodes per SKU and class, attributed as a unit attributes them."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for e in run.episodes:
        if e.actor != "shopper":
            continue
        slots = {e.slot} if e.slot is not None else set()
        slots |= {c.slot for c in e.changes}
        slots |= {
            int(v.zone.removeprefix("slot-"))
            for v in run.visits
            if v.shopper == e.person
            and v.zone.startswith("slot-")
            and v.t_enter <= e.t_leave
            and v.t_leave >= e.t_enter
        }
        for s in slots & skus.keys():
            out[skus[s]][e.intent] += 1
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every scenario's comparison, by name."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--scenarios", default="busy", help="comma-separated scenario names")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    for name in args.scenarios.split(","):
        out[name] = one(name, args.hours)
    return out


def one(scenario: str, hours: float) -> dict[str, Any]:
    """Play ``hours`` of ``scenario`` into a fresh cloud; print and return the comparison."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-interest-"))
    settings = build_settings(database_url=f"sqlite:///{tmp / 'cloud.db'}", rate_per_s=0)
    with serve(settings) as live:
        token = register_unit(live.store, DEVICE, store_id=STORE, bay=BAY)
        unit_dir = tmp / "unit"
        _agent, sensing = run_in_process(
            unit_dir, _Acks(live), live.url, hours=hours, api_key=token, scenario=scenario
        )
        be = live.client(make_key(live.store, Role.BACKEND))
        since = (datetime.now(UTC) - timedelta(hours=hours + 2)).isoformat()
        got = be.get("/v1/interest", params={"store": STORE, "since": since}).json()
    skus = {s.slot: s.sku for s in load_scenario(scenario).slots}
    cloud: dict[str, Counter[str]] = defaultdict(Counter)
    for d in got["data"]:
        cloud[d["sku"]].update(d["counts"])
    assert sensing.run is not None
    truth = truth_per_sku(sensing.run, skus)
    bay_cloud = sum(b["episodes"] for b in got["bays"])
    bay_truth = sum(1 for e in sensing.run.episodes if e.actor == "shopper")
    print(f"## interest per SKU: {scenario}, {hours:g} h, rules deciding\n")
    print("| SKU | episodes cloud | episodes truth | cloud by class | truth by class |")
    print("| --- | ---: | ---: | --- | --- |")
    for sku in sorted(set(skus.values())):
        c, t = cloud.get(sku, Counter()), truth.get(sku, Counter())
        print(f"| {sku} | {sum(c.values())} | {sum(t.values())} | {dict(c)} | {dict(t)} |")
    with_cloud = sum(1 for s in truth if cloud.get(s))
    print(
        f"\nSKUs with interest: cloud {len(cloud)}, truth {len(truth)}, "
        f"truth SKUs the cloud shows {with_cloud}/{len(truth)}; "
        f"bay episodes: cloud {bay_cloud}, truth {bay_truth}\n"
    )
    return {"cloud": cloud, "truth": truth, "bay": (bay_cloud, bay_truth)}


if __name__ == "__main__":
    main()
