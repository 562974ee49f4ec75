"""The closed loop of ``shelfsense demo``: train, serve, sense, decide, sync, read back.

1. Training data from the real pipeline (simulated counts and frames → edge signals →
   camera → windows), labelled from the twin's truth; a tiny teacher and student are
   trained, distilled, exported to int8 ONNX, gated and signed into a bundle.
2. The cloud service runs in this process under uvicorn on a loopback port
   (:func:`cloud.loopback.serve_in_thread`), with a SQLite file; a store, bay and unit
   are registered and keys made.
3. A simulated unit (the real agent in sim mode) installs the bundle, senses another
   stretch of store traffic, decides with the student, commits every event to its
   buffer and syncs it over HTTP; the feed is read back as events arrive, each event
   with what the twin really did beside it, and the demo ends with per-head accuracy,
   stock per SKU against the truth and the interest table (:mod:`shelfsense.demo_truth`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shelfsense import demo_truth

DEVICE = "demo-unit-1"
TRAIN_MINUTES = 15  # each of the three training runs
# The gate set: an hour of the held-out store holds every stock kind (restocks and
# misplaced items come a few an hour), so the gates judge each class the student may
# emit; 15 minutes often held none of them, and the gates refused for want of a case.
GATE_MINUTES = 60
STORE = "store-1"
BAY = "bay-1"


def train_bundle_for_demo(
    work: Path, scenario: str, seed: int, *, runs: int = 3, train_minutes: float = TRAIN_MINUTES
) -> tuple[Path | None, Path]:
    """Train on simulated data from the real pipeline: (bundle dir or None, public key file).

    ``runs`` training runs of ``train_minutes`` each (seeds ``seed + 100`` on), gated on
    ``GATE_MINUTES`` of the held-out store (seed ``seed + 200``).

    The bundle is None when the student did not pass its gates (among them: not worse
    than the fitted rules on the held-out store, every class predicted and judged): the
    demo says so plainly and the unit decides with the rule baseline, as a unit in the
    field would.
    """
    from edge.dataset import simulate_dataset
    from models.bundle import generate_key, public_key_pem
    from models.train.pipeline import TrainConfig, train_bundle

    print("== Model: training data from the pipeline (twin → signals → camera → windows)")
    train: list[Any] = []
    for s in range(seed + 100, seed + 100 + runs):
        recs, stats = simulate_dataset(scenario, s, train_minutes * 60.0)
        train += recs
        print(f"   {scenario} seed {s}: {stats.windows} windows, {stats.detected_changes} changes")
    held, stats = simulate_dataset("heldout", seed + 200, GATE_MINUTES * 60.0)
    print(
        f"   heldout seed {seed + 200}, {GATE_MINUTES} min: {stats.windows} windows, "
        f"stock labels {_counts(stats.stock)} (another store, for the gates)"
    )
    key = generate_key()
    # Three 15-minute runs hold only a handful of the rare stock kinds: class weights
    # estimated from so few would mostly add noise, so the demo trains unweighted.
    cfg = dataclasses.replace(
        TrainConfig.recipe(
            "tiny", "student", epochs=3.0, progress=False, threads=1, min_labelled=5
        ),
        class_weight_power=0.0,
    )
    res = train_bundle(train, held, work / "train", signing_key=key, config=cfg)
    print()
    print(f"   {'contender':<14} {'interest F1':>11} {'stock F1':>9}")
    for name, score in res.scores.items():
        print(
            f"   {name:<14} {score.head('interest').macro_f1:>11.3f} "
            f"{score.head('stock').macro_f1:>9.3f}"
        )
    for check, ok, detail in res.gates.checks:
        print(f"   [{'x' if ok else ' '}] {check}: {detail}")
    pub = work / "trusted.pem"
    pub.write_bytes(public_key_pem(key))
    if res.bundle is None:
        refused = sum(not ok for _, ok, _ in res.gates.checks)
        print(f"   FELL BACK TO THE RULES: {refused} gate(s) above refused this student;")
        print("   no bundle is installed and the unit decides with the rules")
        return None, pub
    size = sum(p.stat().st_size for p in res.bundle.iterdir())
    print(f"   signed bundle: {res.bundle} ({size / 1024:.0f} KiB)")
    return res.bundle, pub


def _counts(counter: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


@contextmanager
def cloud_on_loopback(work: Path) -> Iterator[tuple[str, str, str]]:
    """The cloud service in this process; yields (base URL, unit key, backend key)."""
    from cloud.keys import Role
    from cloud.loopback import make_key, register_unit, serve_in_thread
    from cloud.settings import build_settings

    settings = build_settings(None, database_url=f"sqlite:///{work / 'cloud.db'}")
    with serve_in_thread(settings) as served:
        names = {"store_name": "Demo store", "bay_name": "Snacks", "key_name": "demo unit"}
        unit_key = register_unit(served.store, DEVICE, STORE, BAY, **names)
        backend_key = make_key(served.store, Role.BACKEND, name="demo backend")
        yield served.url, unit_key, backend_key


def _feed(base_url: str, key: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    import requests

    params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
    r = requests.get(
        f"{base_url}/v1/events",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    r.raise_for_status()
    body = r.json()
    return body["data"], body.get("next_cursor") or cursor


def _show(e: dict[str, Any], truth: str = "") -> str:
    ev = e.get("event", e)
    what = f"{ev['kind']:<8} {ev['label']:<11} ({ev['confidence']:.2f})"
    where = f"slot {ev['slot']:>2} {ev.get('sku') or '':<10}" if ev.get("slot") is not None else ""
    units = f"{ev['units']:+d} u → {ev['stock_units']} left" if ev.get("units") is not None else ""
    if not units and ev.get("stock_units") is not None:  # a level: the count it stands on
        units = f"{ev['stock_units']} on the slot"
    dwell = f"dwell {ev['dwell_s']:.1f} s" if ev.get("dwell_s") is not None else ""
    said = f"{units or dwell:<18}"
    return f"   #{ev['seq']:<4} {what} {where:<14} {said} {truth:<34} [{ev['decided_by']}]"


def run_unit(
    work: Path, bundle: Path | None, pub: Path, scenario: str, seed: int, minutes: float
) -> int:
    """Sense ``minutes`` of traffic on a simulated unit synced to an in-process cloud."""
    from edge.agent import Agent
    from edge.config import parse_config
    from edge.sync.identity import Identity
    from edge.workers.build import add_sensing

    with cloud_on_loopback(work) as (url, unit_key, backend_key):
        print()
        print(f"== Cloud: serving {url}/v1 (SQLite at {work / 'cloud.db'})")
        cfg = parse_config(
            {
                "unit": {"device_id": DEVICE, "store": STORE, "bay": BAY, "data_dir": str(work)},
                "loadcells": {"source": "sim", "sim_scenario": scenario, "sim_seed": seed},
                "camera": {"source": "sim"},
                "model": {"bundle_dir": str(bundle or work / "no-model"), "trusted_key": str(pub)},
                "sync": {"mode": "http", "base_url": url, "idle_s": 0.05},
                "health": {"interval_s": 0.5},
            },
            source="demo",
        )
        agent = Agent(cfg, identity=Identity(device_id=DEVICE, api_key=unit_key))
        sensing = add_sensing(agent, speed=0, sim_hours=minutes / 60.0)
        truth = demo_truth.view_of(sensing)
        print(f"== Unit {DEVICE}: {minutes:g} simulated minutes of {scenario!r}, seed {seed}")
        print(
            "   events as the cloud feed returns them (the backend's view), the twin's truth beside:"
        )
        agent.start()
        cursor: str | None = None
        seen = 0
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                done = agent.health.get("sim_done") is True
                rows, cursor = _feed(url, backend_key, cursor)
                bodies = _unit_bodies(work / cfg.buffer.file, [int(e["seq"]) for e in rows])
                for e in rows:
                    body = bodies.get(int(e["seq"]))  # the unit's own copy: sensor times
                    print(_show(e, truth.beside(body) if truth and body else ""))
                seen += len(rows)
                if done and agent.buffer.seq == seen:
                    break
                time.sleep(0.2)
        finally:
            agent.stop()
        print(f"   {seen} events committed on the unit and stored once in the cloud")
        print(f"   {_uploaded_windows(work)} windows came with them: the fleet's training data")
        print("   (labelled by sales and staff; `shelfsense cloud train --from-store` reads them)")
        if truth is not None:
            print()
            for line in demo_truth.summary_lines(
                truth,
                _get(url, backend_key, "/v1/stock/skus"),
                _get(url, backend_key, "/v1/interest"),
            ):
                print(line)
        return seen


def _unit_bodies(db: Path, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """The unit's committed events by seq, read from its buffer (read only)."""
    import json
    import sqlite3

    if not seqs:
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        marks = ",".join("?" * len(seqs))
        rows = conn.execute(f"SELECT seq, body FROM outbox WHERE seq IN ({marks})", seqs)
        return {int(seq): json.loads(body) for seq, body in rows}
    finally:
        conn.close()


def _get(base_url: str, key: str, path: str) -> list[dict[str, Any]]:
    import requests

    r = requests.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    r.raise_for_status()
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _uploaded_windows(work: Path) -> int:
    from cloud.store import open_store
    from cloud.training_data import read_windows

    store = open_store(f"sqlite:///{work / 'cloud.db'}", pool_size=1)
    try:
        return len(read_windows(store))
    finally:
        store.dispose()
