"""`edge status` reads the status file and the buffer database, read-only, never the agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edge.buffer import Buffer
from edge.config import parse_config
from edge.health import DISK_FULL, Health, read_status, write_status
from edge.status import agent_state, collect, pid_alive, read_buffer, render_table
from tests.edge.events_support import event_fields


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
    health.set(
        "ota_report",
        {"state": "rolled_back", "version": 5, "previous_version": 4, "reason": "crash loop"},
    )
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
    assert "rolled_back v5, previous v4 (crash loop)" in table.split("model update")[1]
    json.dumps(st)  # JSON-ready
    buf.close()
    # after a clean stop (no -wal/-shm left) the read-only view still works
    assert read_buffer(tmp_path / "buffer.db")["depth"] == 3


def test_status_without_agent_or_buffer(tmp_path: Path) -> None:
    st = collect(config_for(tmp_path))
    assert st["buffer"]["present"] is False and st["buffer_depth"] is None
    assert not st["agent_running"] and st["last_sync"] is None
    assert "not reporting" in render_table(st)
    assert render_table(st).split("model update")[1].split("\n")[0].strip() == "-"


def test_stale_status_file_of_a_live_process_means_running_but_not_reporting(
    tmp_path: Path,
) -> None:
    cfg = config_for(tmp_path)
    health = Health(clock=lambda: 1000.0)
    write_status(tmp_path / "status.json", health.snapshot())  # this process: alive
    st = collect(cfg, now=1000.0 + 10 * cfg.health.interval_s)
    assert st["agent_running"] and "not reporting for 5 min" in st["agent"]


def test_a_fresh_status_file_of_a_dead_process_means_not_running(tmp_path: Path) -> None:
    cfg = config_for(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    snap = Health(clock=lambda: 1000.0).snapshot() | {"pid": child.pid}
    write_status(tmp_path / "status.json", snap)
    st = collect(cfg, now=1001.0)
    assert not st["agent_running"] and "ended without a clean stop" in st["agent"]
    assert "ended without a clean stop" in render_table(st)


def test_a_clean_stop_is_told_apart_while_the_file_is_fresh(tmp_path: Path) -> None:
    cfg = config_for(tmp_path)
    health = Health(clock=lambda: 1000.0)
    health.set("stopped_at", 1000.0)
    write_status(tmp_path / "status.json", health.snapshot())  # pid alive (this process)
    st = collect(cfg, now=1070.0)
    assert not st["agent_running"] and st["agent"] == "stopped 70 s ago"


def test_agent_state_is_decided_from_values() -> None:
    def alive(pid: int) -> bool:
        return pid == 7

    snap = {"at": 100.0, "pid": 7, "gauges": {}}
    assert agent_state(snap, now=110, interval_s=30, alive=alive) == (True, "running (pid 7)")
    assert agent_state(snap | {"pid": 8}, now=110, interval_s=30, alive=alive)[0] is False
    assert agent_state(snap | {"pid": "7"}, now=110, interval_s=30, alive=alive)[0] is False
    assert agent_state(None, now=110, interval_s=30, alive=alive)[0] is False
    assert not pid_alive(0) and not pid_alive(-1) and not pid_alive(2**62)
    assert pid_alive(os.getpid())


def test_outage_counters_read_as_delivered_waiting_and_failed_tries(tmp_path: Path) -> None:
    cfg = config_for(tmp_path)
    health = Health()
    buf = Buffer(tmp_path / "buffer.db", device_id="unit-s", health=health)
    buf.append_many([event_fields(i) for i in range(66)])
    for _ in range(6):
        health.count("batches_sent")
        health.count("sync_failures")
    health.set("sync_error", "POST events: ConnectionError: refused")
    health.set("decided_by", "model")
    write_status(tmp_path / "status.json", health.snapshot())
    st = collect(cfg)
    assert st["sync"] == {
        "events_committed": 66,
        "events_delivered": 0,
        "events_waiting": 66,
        "batches_tried": 6,
        "tries_failed": 6,
        "events_refused": 0,
    }
    table = render_table(st)
    assert "events delivered  0 (acknowledged by the cloud)" in table
    assert "sync tries        6 batches, 6 failed" in table
    assert "last sync error   POST events: ConnectionError: refused" in table
    assert "decided by        model" in table
    buf.close()


def test_edge_status_piped_into_head_ends_without_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "unit.toml"
    conf.write_text(f'[unit]\ndevice_id = "unit-s"\ndata_dir = "{tmp_path}"\n')
    write_status(tmp_path / "status.json", Health().snapshot())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "shelfsense", "edge", "status", "--config", str(conf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err


def test_status_file_write_is_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert read_status(path) is None
    write_status(path, {"at": 1, "gauges": {"x": 1}})
    assert read_status(path) == {"at": 1, "gauges": {"x": 1}}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left
    path.write_text("{half")
    assert read_status(path) is None
