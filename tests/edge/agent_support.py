"""The whole agent under test: a sim-mode unit config, the agent in process or as a process.

A test or bench writes :func:`unit` (or :func:`write_unit` for the ``shelfsense edge run``
child), plays the store twin with :func:`run_in_process` for the reference of what one
uninterrupted run decides, or :func:`start` s the agent as a real process to ``kill -9``
it; :func:`committed` reads what its SQLite buffer had made durable, :func:`decided`
strips an event of when it was sent and which seq it got; :func:`caught_up` tells, from
the buffer read only, when a restarted child is past its replay and committing new events.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from edge.agent import Agent
from edge.config import parse_config
from edge.sync.identity import Identity
from edge.workers.build import add_sensing
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
DEVICE = "sim-e2e"
API_KEY = "test-key"
STORE, BAY = "store-9", "bay-2"  # where the unit says it sits
HOURS = 0.1  # six simulated minutes of rush hour
SPEED = 60.0
SEED = 5
CAMERA = {"width": 160, "height": 120}


class Acks(Protocol):
    """A cloud that tells how far a device's events are stored."""

    def highest_contiguous(self, device_id: str) -> int: ...


def unit(tmp: Path, base_url: str, scenario: str = "busy") -> dict[str, Any]:
    """Config of a sim unit (``scenario``, simulated camera) syncing over HTTP to ``base_url``."""
    return {
        "unit": {"device_id": DEVICE, "data_dir": str(tmp), "store": STORE, "bay": BAY},
        "loadcells": {"source": "sim", "sim_scenario": scenario, "sim_seed": SEED},
        "camera": {"source": "sim", **CAMERA},
        "sync": {"mode": "http", "base_url": base_url, "idle_s": 0.05},
        "health": {"interval_s": 0.2},
    }


def write_unit(data: Path, base_url: str, *, api_key: str = API_KEY) -> Path:
    """Make ``data`` a unit's data dir (identity with ``api_key``, ``unit.toml``); return
    the config path."""
    data.mkdir(parents=True, exist_ok=True)
    (data / "identity.json").write_text(json.dumps({"device_id": DEVICE, "api_key": api_key}))
    cfg = data / "unit.toml"
    cfg.write_text(
        "\n".join(
            f"[{sec}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in vals.items())
            for sec, vals in unit(data, base_url).items()
        )
    )
    return cfg


def decided(bodies: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What was decided, without when it was sent or which seq it got, and without the
    start level reports (every start of a unit reports its levels once more)."""
    keys = ("episode", "kind", "label", "slot", "units", "grams", "stock_units", "mono_time")
    return [
        tuple(b.get(k) for k in keys)
        for b in bodies
        if (b.get("features") or {}).get("report") != "start"
    ]


def run_in_process(
    tmp: Path,
    store: Acks,
    base_url: str,
    *,
    hours: float = HOURS,
    api_key: str = API_KEY,
    scenario: str = "busy",
) -> tuple[Agent, Any]:
    """Play ``hours`` of the twin (``scenario``) unpaced in this process until the cloud
    holds every event; return the stopped agent and its :class:`edge.workers.build.Sensing`."""
    agent = Agent(
        parse_config(unit(tmp, base_url, scenario)),
        identity=Identity(device_id=DEVICE, api_key=api_key),
    )
    sensing = add_sensing(agent, speed=0, sim_hours=hours)
    agent.start()
    try:
        wait_until(lambda: agent.health.get("sim_done") is True, timeout=600)
        wait_until(lambda: store.highest_contiguous(DEVICE) == agent.buffer.seq, timeout=60)
    finally:
        agent.stop()
    return agent, sensing


def committed(db: Path) -> dict[int, dict[str, Any]]:
    """Events the killed agent had committed (its buffer file after the kill)."""
    conn = sqlite3.connect(str(db))
    try:
        return {s: json.loads(b) for s, b in conn.execute("SELECT seq, body FROM outbox")}
    finally:
        conn.close()


def start(cfg: Path, *, speed: float = SPEED, hours: float = HOURS) -> subprocess.Popen[bytes]:
    """``shelfsense edge run`` on ``cfg`` as a child process, the twin paced at ``speed``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "shelfsense", "edge", "run", "--config", str(cfg)]
    cmd += ["--speed", str(int(speed) if speed == int(speed) else speed)]
    cmd += ["--sim-hours", str(hours)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.DEVNULL)


def status(data: Path) -> dict[str, Any] | None:
    """The unit's ``status.json``, or None while it is missing or half-written."""
    try:
        got = json.loads((data / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None


def running(data: Path, proc: subprocess.Popen[bytes]) -> bool:
    """True once ``proc`` has started its workers (it wrote its pid into ``status.json``)."""
    st = status(data)
    return st is not None and st.get("pid") == proc.pid


def finished(data: Path, proc: subprocess.Popen[bytes]) -> bool:
    """True once ``proc`` has played the whole twin and its buffer is drained to the cloud."""
    st = status(data)
    if st is None or st.get("pid") != proc.pid:
        return False
    g = st.get("gauges", {})
    return g.get("sim_done") is True and g.get("buffer_depth") == 0


def top_seq(db: Path) -> int:
    """Highest seq in the buffer at ``db``, read-only (0 while it is missing or empty)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return 0
    try:
        row = conn.execute("SELECT MAX(seq) FROM outbox").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
    return int(row[0] or 0) if row else 0


def caught_up(data: Path, proc: subprocess.Popen[bytes], after: int) -> bool:
    """True once a (re)started ``proc`` commits past seq ``after``: a restarted sim unit first
    replays its day unpaced up to its last committed event, so a new seq means it is live.
    Also true once the twin is played out (nothing new will come) or ``proc`` has exited."""
    if proc.poll() is not None or top_seq(data / "buffer.db") > after:
        return True
    st = status(data)
    return (
        st is not None
        and st.get("pid") == proc.pid
        and st.get("gauges", {}).get("sim_done") is True
    )
