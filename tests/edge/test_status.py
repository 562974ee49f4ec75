"""`edge status` reads the status file and the buffer database, read-only, never the agent."""

from __future__ import annotations

import json
from pathlib import Path

from edge.buffer import Buffer
from edge.config import parse_config
from edge.health import DISK_FULL, Health, read_status, write_status
from edge.status import collect, read_buffer, render_table
from tests.edge.cloud_stand_in import event_fields


def config_for(tmp_path: Path):
    return parse_config({"unit": {"device_id": "unit-s", "data_dir": str(tmp_path)}})


def test_status_from_files(tmp_path: Path) -> None:
    cfg = config_for(tmp_path)
    now = [1_000_000.0]
    health = Health(clock=lambda: now[0])
    buf = Buffer(tmp_path / "buffer.db", device_id="unit-s", health=health, clock=lambda: now[0])
    buf.append_many([event_fields(i) for i in range(5)])
    now[0] += 100
    buf.ack([1, 2])
    health.set("model_version", 4)
    health.set("last_sync", now[0])
    health.alarm(DISK_FULL, "no space")
    health.component("camera", False, "no frames for 30 s")
    health.component("loadcell.0", True)
    write_status(tmp_path / "status.json", health.snapshot())
    now[0] += 20
    st = collect(cfg, now=now[0])
    assert st["buffer_depth"] == 3 and st["buffer"]["seq"] == 5
    assert st["oldest_unsynced_age_s"] == 120.0
    assert st["last_sync_age_s"] == 20.0
    assert st["model_version"] == 4 and st["agent_running"]
    assert DISK_FULL in st["alarms"] and st["components"]["camera"]["ok"] is False
    assert st["counters"]["events_committed"] == 5
    table = render_table(st)
    assert "ALARM disk_full" in table and "camera" in table and "FAULT" in table
    json.dumps(st)  # JSON-ready
    buf.close()
    # after a clean stop (no -wal/-shm left) the read-only view still works
    assert read_buffer(tmp_path / "buffer.db")["depth"] == 3


def test_status_without_agent_or_buffer(tmp_path: Path) -> None:
    st = collect(config_for(tmp_path))
    assert st["buffer"]["present"] is False and st["buffer_depth"] is None
    assert not st["agent_running"] and st["last_sync"] is None
    assert "not reporting" in render_table(st)


def test_stale_status_file_means_not_running(tmp_path: Path) -> None:
    cfg = config_for(tmp_path)
    health = Health(clock=lambda: 1000.0)
    write_status(tmp_path / "status.json", health.snapshot())
    assert not collect(cfg, now=1000.0 + 10 * cfg.health.interval_s)["agent_running"]


def test_status_file_write_is_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert read_status(path) is None
    write_status(path, {"at": 1, "gauges": {"x": 1}})
    assert read_status(path) == {"at": 1, "gauges": {"x": 1}}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left
    path.write_text("{half")
    assert read_status(path) is None
