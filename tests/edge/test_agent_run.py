"""The agent end to end in sim mode: twin -> sensors -> windows -> rules -> buffer -> cloud.

An in-process agent plays a busy stretch of the store twin against the real cloud service
over loopback HTTP (:mod:`tests.edge.soak_cloud`): every event arrives once, seqs run 1..N, and the stock events match
the twin's truth changes. Then the agent as a real process is killed with SIGKILL at
random moments and restarted: what reaches the cloud is exactly what one uninterrupted
run decides (nothing committed lost, nothing twice).
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edge.agent import Agent
from edge.config import load_config, parse_config
from edge.metrics_file import TEXTFILE
from edge.status import collect
from edge.workers.build import add_sensing
from firmware_bridge.sim.truth import TruthChange
from tests.edge.agent_support import (
    DEVICE,
    committed,
    decided,
    finished,
    run_in_process,
    running,
    start,
    unit,
    write_unit,
)
from tests.edge.soak_cloud import open_cloud
from tests.support.waiting import wait_until

MOVES = ("removal", "return", "restock", "misplaced")


def matches(truth: list[TruthChange], stock: list[dict[str, Any]]) -> int:
    """Truth changes found by an event on their slot, in their time, with their weight.

    Units must agree too, except for ``misplaced``: the twin counts units of the foreign
    SKU, the unit can only count them in units of the slot's own SKU.
    """
    used: set[int] = set()
    found = 0
    for tc in truth:
        for i, e in enumerate(stock):
            if i in used or e["slot"] != tc.slot or abs(e["grams"] - tc.grams) > 10.0:
                continue
            if tc.kind != "misplaced" and e["units"] != tc.units:
                continue
            if tc.t_start - 2.0 <= e["mono_time"] <= tc.t_end + 8.0:
                used.add(i)
                found += 1
                break
    return found


def test_sim_agent_events_reach_cloud_and_match_truth(tmp_path: Path) -> None:
    with open_cloud(tmp_path, "cloud") as cloud:
        agent, sensing = run_in_process(
            tmp_path / "unit", cloud, cloud.base_url, api_key=cloud.api_key
        )
        rows = cloud.stored(DEVICE)
    seqs = [r.seq for r in rows]
    assert sorted(seqs) == list(range(1, len(rows) + 1))  # every seq once, none missing
    bodies = sorted((r.event for r in rows), key=lambda b: b["seq"])
    assert all(b["decided_by"] == "rules" and b["model_version"] is None for b in bodies)
    assert all(b["store"] == "store-9" and b["bay"] == "bay-2" for b in bodies)
    kinds = Counter(b["kind"] for b in bodies)
    assert kinds["interest"] > 0 and kinds["stock"] > 0

    truth = [c for c in sensing.run.changes if c.kind in MOVES]
    stock = [b for b in bodies if b["kind"] == "stock" and b["label"] != "none"]
    assert len(truth) >= 5  # a busy stretch, not an empty one
    assert len(stock) == len(truth)
    assert matches(truth, stock) == len(truth)
    removed = [c for c in truth if c.kind == "removal"]
    took = [b for b in stock if b["label"] == "removal"]
    assert sum(c.units for c in removed) == sum(b["units"] for b in took)
    for b in stock:  # the book moved with every stock event
        assert b["sku"] is not None and b["stock_units"] >= 0
    assert agent.health.counter("events_decided") == len(rows)


@pytest.mark.slow(seconds=20)
def test_kill_9_and_restart_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    rng = random.Random(11)
    with open_cloud(tmp_path, "reference-cloud") as ref:
        run_in_process(tmp_path / "reference", ref, ref.base_url, api_key=ref.api_key)
        reference = decided(sorted((r.event for r in ref.stored(DEVICE)), key=lambda b: b["seq"]))
    with open_cloud(tmp_path, "cloud") as cloud:  # the same device starts over in a new cloud
        data = tmp_path / "unit"
        cfg = write_unit(data, cloud.base_url, api_key=cloud.api_key)
        before: dict[int, dict[str, Any]] = {}

        for _ in range(2):
            proc = start(cfg)
            wait_until(lambda: running(data, proc), timeout=60)  # noqa: B023 (called at once)
            time.sleep(rng.uniform(1.0, 3.5))  # mid-run: the stretch lasts 6 s at 60x
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            st = collect(load_config(cfg))
            assert not st["agent_running"] and "without a clean stop" in st["agent"]
            now = committed(data / "buffer.db")
            assert all(now[s] == b for s, b in before.items())  # a restart rewrote nothing
            before = now
        proc = start(cfg)
        try:
            wait_until(lambda: finished(data, proc), timeout=90)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
            st = collect(load_config(cfg))
            assert not st["agent_running"] and st["agent"].startswith("stopped")
        finally:
            if proc.poll() is None:
                proc.kill()
        rows = cloud.stored(DEVICE)
    seqs = sorted(r.seq for r in rows)
    assert seqs == list(range(1, len(rows) + 1))
    stored = {r.seq: r.event for r in rows}
    assert len(before) > 0
    for s, b in before.items():  # everything committed before a kill reached the cloud as is
        assert decided([stored[s]]) == decided([b])
    assert decided([stored[s] for s in seqs]) == reference  # one day, decided once


def test_weight_keeps_deciding_while_the_camera_is_down(tmp_path: Path) -> None:
    from edge.camera.errors import CameraUnavailableError

    cfg = unit(tmp_path, "http://127.0.0.1:9")
    cfg["sync"] = {"mode": "off"}
    cfg["camera"]["backoff_initial_s"] = 0.05
    cfg["camera"]["backoff_max_s"] = 0.1
    agent = Agent(parse_config(cfg))
    sensing = add_sensing(agent, speed=0, sim_hours=0.05)

    def no_camera() -> Any:
        raise CameraUnavailableError("no camera on this unit")

    assert sensing.camera is not None
    sensing.camera.camera.source_factory = no_camera
    agent.start()
    try:
        wait_until(lambda: agent.health.get("sim_weight_done") is True, timeout=60)
        wait_until(
            lambda: sensing.inbox.pending() == 0 and sensing.decisions.emitted > 0, timeout=60
        )
        snap = agent.refresh_health()
    finally:
        agent.stop()
    assert snap["gauges"]["camera"]["failures"] >= 2
    assert snap["components"]["camera"]["ok"] is False and "camera_down" in snap["alarms"]
    assert snap["components"]["loadcells"]["ok"] is True
    prom = (tmp_path / TEXTFILE).read_text()  # the node_exporter textfile, written with status
    assert 'shelfsense_unit_decisions_total{head="stock",decided_by="rules"' in prom
    assert "shelfsense_unit_inference_seconds_count" in prom
    truth = [c for c in sensing.run.changes if c.kind in ("removal", "return", "restock")]
    book = sensing.decisions.book
    for s, units in sensing.run.final_units.items():  # stock followed the weight alone
        assert book.units[s] == units or any(
            c.slot == s for c in sensing.run.changes if c.kind == "misplaced"
        )
    assert truth and agent.health.counter("windows_unseen") >= len(truth)
