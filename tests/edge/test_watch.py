"""``edge watch``: the live view reads the status file and the outbox, and follows them."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from edge.buffer import Buffer
from edge.config import parse_config
from edge.health import Health, write_status
from edge.watch import render, snapshot
from tests.edge.events_support import event_fields
from tests.support.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]
SLOTS = [
    {"slot": 0, "channel": 0, "sku": "SKU-A", "unit_grams": 250},
    {"slot": 1, "channel": 1, "sku": "SKU-B", "unit_grams": 100},
]


def shown(snap: dict[str, object]) -> str:
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(render(snap))
    return out.getvalue()


def unit(tmp_path: Path) -> tuple[Path, Health, Buffer]:
    cfg = tmp_path / "unit.toml"
    slots = "".join(
        f'[[slots]]\nslot = {s["slot"]}\nchannel = {s["channel"]}\nsku = "{s["sku"]}"\n'
        f"unit_grams = {s['unit_grams']}\n\n"
        for s in SLOTS
    )
    cfg.write_text(
        f'[unit]\ndevice_id = "unit-w"\ndata_dir = "{tmp_path}"\n\n'
        '[loadcells]\nsource = "serial"\n\n' + slots
    )
    health = Health()
    buf = Buffer(tmp_path / "buffer.db", device_id="unit-w", health=health)
    health.set("slot_grams", {"0": 749.6, "1": 0.4})
    health.set("stock_units", {"0": 3, "1": 0})
    health.set("stock_flags", {"1": ["empty"]})
    health.set("camera", {"status": "up", "frames": 1200})
    health.set("presence", {"bay": 4.2})
    write_status(tmp_path / "status.json", health.snapshot())
    return cfg, health, buf


def test_the_view_shows_slots_camera_decisions_and_sync(tmp_path: Path) -> None:
    _cfg, health, buf = unit(tmp_path)
    buf.append_many([event_fields(0), {**event_fields(1), "slot": 1, "sku": "SKU-B"}])
    buf.ack([1])
    write_status(tmp_path / "status.json", health.snapshot())  # the agent's next write
    config = parse_config(
        {
            "unit": {"device_id": "unit-w", "data_dir": str(tmp_path)},
            "slots": SLOTS,
        }
    )
    text = shown(snapshot(config))
    buf.close()
    assert "unit unit-w" in text
    slot_rows = [line for line in text.splitlines() if "SKU-A" in line or "SKU-B" in line]
    assert any("749.6 g" in r and " 3 " in r for r in slot_rows), text
    assert any("0.4 g" in r and "empty" in r for r in slot_rows), text
    assert "camera: up" in text and "someone at: bay (4 s)" in text
    assert "stock: removal" in text and "-412" in text
    rows = {line.split()[1]: line for line in text.splitlines() if "stock: removal" in line}
    assert "yes" in rows["1"] and "not yet" in rows["2"]
    assert "sync: 1 of 2 sent, 1 waiting" in text


def test_a_unit_that_never_ran_says_so(tmp_path: Path) -> None:
    config = parse_config({"unit": {"device_id": "unit-w", "data_dir": str(tmp_path)}})
    text = shown(snapshot(config))
    assert "not reporting" in text and "no decisions yet" in text and "nobody in view" in text


def test_edge_watch_follows_a_new_decision_at_the_terminal(tmp_path: Path) -> None:
    cfg_path, _, buf = unit(tmp_path)
    term = Terminal(
        ["edge", "watch", "--config", str(cfg_path), "--every", "0.2"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "COLUMNS": "140", "LINES": "40"},
    )
    try:
        term.expect("no decisions yet")
        buf.append_many([{**event_fields(7), "label": "return", "units": 1, "grams": 250.0}])
        term.expect("stock: return")
    finally:
        term.close()
        buf.close()
