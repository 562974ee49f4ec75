"""The agent process skeleton: workers, emit → buffer → cloud, SIGTERM and sd_notify."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from edge.agent import Agent, SdNotify
from edge.config import parse_config
from edge.sync.identity import Identity
from tests.edge.real_cloud import real_cloud, real_event
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def test_emit_reaches_cloud_and_plugged_worker_runs(tmp_path: Path) -> None:
    with real_cloud(tmp_path) as cloud:
        key = cloud.register("unit-a")
        cfg = parse_config(
            {
                "unit": {"device_id": "unit-a", "data_dir": str(tmp_path)},
                "sync": {"base_url": cloud.url, "idle_s": 0.05},
                "health": {"interval_s": 0.1},
            }
        )
        agent = Agent(cfg, identity=Identity(device_id="unit-a", api_key=key))
        ran = threading.Event()

        def producer(stop: threading.Event) -> None:  # a decision worker plugs in like this
            agent.emit([real_event(i) for i in range(3)])
            ran.set()
            stop.wait()

        agent.add_worker("decisions", producer)
        agent.start()
        wait_until(lambda: cloud.count("unit-a") == 3)
        wait_until(lambda: (tmp_path / "status.json").exists())
        assert agent.alive()
        agent.stop()
        assert ran.is_set()
        assert cloud.seqs("unit-a") == [1, 2, 3]
        status = json.loads((tmp_path / "status.json").read_text())
        assert status["gauges"]["buffer_depth"] == 0
        assert status["counters"]["events_synced"] == 3


def test_desired_config_applied_to_running_sync(tmp_path: Path) -> None:
    cfg = parse_config({"unit": {"device_id": "unit-a", "data_dir": str(tmp_path)}})
    agent = Agent(cfg, identity=Identity(device_id="unit-a", api_key="k"))
    models: list[int] = []
    agent.model_hooks.append(models.append)
    body = {
        "device_id": "unit-a",
        "updated_at": "2026-12-05T07:00:00Z",
        "model_version": 2,
        "config": {
            "sync.batch_size": 7,
            "sync.live_age_s": 45,
            "sync.ack_timeout_s": 3,
            "sync.backoff_initial_s": 2,
            "sync.backoff_max_s": 20,
            "buffer.max_mb": 1,
            "buffer.keep_synced_days": 2,
            "buffer.on_full": "drop_new",
        },
    }
    assert agent.desired.handle(json.dumps(body))
    sync = agent.sync
    assert sync is not None and sync.config.batch_size == 7
    # every live field reaches the part that uses it, through that part's apply()
    assert sync.state.batch_size() == 7
    assert sync.state.cutoff(1000.0) == 1000.0 - 45
    assert sync.state.ack_timeout_s == 3
    assert (sync.backoff.initial_s, sync.backoff.max_s) == (2, 20)
    policy = agent.buffer.policy
    assert policy.max_bytes == 1024 * 1024
    assert policy.expiry_cutoff(1000.0) == 1000.0 - 2 * 86400
    assert policy.on_full == "drop_new"
    assert agent.config.buffer.on_full == "drop_new"
    assert models == [2]
    agent.stop()


def test_sd_notify_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    n = SdNotify({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
    assert n.watchdog_s == 2.0
    assert n.notify("READY=1")
    assert sock.recv(100) == b"READY=1"
    sock.close()
    assert not SdNotify({}).notify("READY=1")


def test_run_under_systemd_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "identity.json").write_text(json.dumps({"device_id": "unit-r", "api_key": "k"}))
    cfg = tmp_path / "unit.toml"
    cfg.write_text(
        f'[unit]\ndevice_id = "unit-r"\ndata_dir = "{tmp_path}"\n'
        '[sync]\nbase_url = "http://127.0.0.1:9"\n[health]\ninterval_s = 0.2\n'
    )
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NOTIFY_SOCKET": str(path),
        "WATCHDOG_USEC": "400000",
    }
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:  # a file, not a pipe nobody reads: a full pipe would block
        proc = subprocess.Popen(
            # -X faulthandler: a SIGABRT writes every thread's stack to stderr
            [
                sys.executable,
                "-X",
                "faulthandler",
                *("-m", "shelfsense", "edge", "run"),
                "--config",
                str(cfg),
            ],
            cwd=REPO,
            env=env,
            stderr=err,
        )
    try:
        got = [sock.recv(100)]
        assert got[0] == b"READY=1"
        got.append(sock.recv(100))
        assert got[1] == b"WATCHDOG=1"
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(10)
            raise AssertionError(f"still running 60 s after SIGTERM:\n{log.read_text()}") from None
        assert code == 0, log.read_text()
        while got[-1] != b"STOPPING=1":
            got.append(sock.recv(100))
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["pid"] == proc.pid  # the last status came from this process
    assert (tmp_path / "buffer.db").exists()


def test_a_refused_health_report_is_counted_and_said_once(tmp_path: Path, caplog) -> None:
    with real_cloud(tmp_path) as cloud:
        cloud.register("unit-a")
        other = cloud.register("unit-b")  # a key of another unit: the cloud answers 403
        cfg = parse_config(
            {
                "unit": {"device_id": "unit-a", "data_dir": str(tmp_path)},
                "sync": {"base_url": cloud.url},
            }
        )
        agent = Agent(cfg, identity=Identity(device_id="unit-a", api_key=other))
        snap = agent.refresh_health()
        with caplog.at_level("WARNING", logger="edge.agent"):
            agent._put_health(snap)
            agent._put_health(snap)
        counters = agent.health.snapshot()["counters"]
        assert counters["health_refused"] == 2 and counters["health_put_failures"] == 2
        said = [r for r in caplog.records if "refused this unit's health report" in r.message]
        assert len(said) == 1 and "403" in said[0].getMessage()
