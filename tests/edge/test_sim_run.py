"""``shelfsense edge run`` in sim mode ends with the simulated day and says where it resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from edge.workers.state import SimMark, load_sim_mark, save_sim_mark
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
HOURS = "0.05"  # 180 simulated seconds: the first weight changes of busy seed 4 fall in it


def _config(tmp: Path, seed: int = 4) -> Path:
    cfg = tmp / "unit.toml"
    cfg.write_text(
        f'[unit]\ndata_dir = "{tmp / "var"}"\n'
        f'[loadcells]\nsource = "sim"\nsim_scenario = "busy"\nsim_seed = {seed}\n'
        '[sync]\nmode = "off"\n'
    )
    return cfg


def _run(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "shelfsense", "edge", "run", "--config", str(cfg)]
    cmd += ["--speed", "0", "--sim-hours", HOURS, "--no-camera", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_sim_run_exits_after_its_hours_and_a_rerun_says_it_is_done(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    first = _run(cfg)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == f"sim: playing busy seed 4, {HOURS} h from the start"
    assert lines[-1].startswith("sim: played to the end, ")
    mark = load_sim_mark(tmp_path / "var" / "sim_mark.json")
    assert mark is not None and mark.done and mark.mono_time > 0
    again = _run(cfg)
    assert again.returncode == 0, again.stderr
    assert "already played to the end" in again.stdout
    other = _run(_config(tmp_path, seed=5))
    assert f"playing busy seed 5, {HOURS} h from the start (this data folder held busy seed 4" in (
        other.stdout
    )


def test_a_restarted_sim_unit_says_where_it_resumes(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    save_sim_mark(
        tmp_path / "var" / "sim_mark.json",
        SimMark({"scenario": "busy", "seed": 4, "hours": float(HOURS)}, 3, 40.0),
    )
    got = _run(cfg)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[0] == (
        f"sim: resuming busy seed 4, {HOURS} h after episode 3 (t=40.0 s); "
        "the day up to there is replayed unpaced and not sent again"
    )


def test_sigterm_still_stops_a_paced_sim_unit(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cmd = [sys.executable, "-m", "shelfsense", "edge", "run", "--config", str(cfg)]
    cmd += ["--speed", "1", "--sim-hours", "1", "--no-camera"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (tmp_path / "var" / "status.json").exists(), timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
