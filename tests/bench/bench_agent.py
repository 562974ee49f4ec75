"""Agent benchmark: CPU per simulated second and peak memory of a whole unit in sim mode.

The agent runs as its own process (``shelfsense edge run``) on the ``busy`` scenario:
16 load-cell channels at 80 SPS and the simulated camera at 10 fps, 320x240 (the
config defaults), with the weight, camera, decision and health workers (sync off: the
buffer and sync cost is benched in ``bench_buffer``). The parent samples the child
with psutil: CPU-seconds (user + system, all threads) between two instants after
start-up, and the peak RSS over the whole run.

Rows, all in the same run:

1. **weight path alone** (``--no-camera``), paced to real time: the baseline.
2. **full agent**, paced to real time (``--speed 1``): CPU-seconds per simulated
   second = CPU over the measuring window / its wall length (60 s; ``--quick``: 10 s).
3. **full agent, accelerated** (``--speed 0``): CPU from start of the workers to the end
   of the simulated stretch (15 min; ``--quick``: 3 min), divided by simulated seconds.
4. **simulator alone**, in the bench process: rendering the camera frames and
   generating the raw counts of the same stretch; on a unit the sensors do that, so
   "agent minus simulator" is the figure a Pi pays for sensing and deciding.

Targets: full agent <= 0.05 of one core per simulated second, peak RSS <= 150 MB.

Run: ``.venv/bin/python -m tests.bench.bench_agent [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
SCENARIO = "busy"
SEED = 2
CPU_TARGET = 0.05
RSS_TARGET_MB = 150.0
WARMUP_S = 3.0


@dataclass
class Row:
    """One measured run."""

    name: str
    pacing: str
    sim_s: float
    cpu_s: float
    rss_mb: float
    events: int = 0
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_sim_s(self) -> float:
        """CPU-seconds per simulated second."""
        return self.cpu_s / self.sim_s if self.sim_s > 0 else float("nan")


def _write_unit(tmp: Path) -> Path:
    cfg = tmp / "unit.toml"
    cfg.write_text(
        f'[unit]\ndevice_id = "bench-agent"\ndata_dir = "{tmp}"\n'
        f'[loadcells]\nsource = "sim"\nsim_scenario = "{SCENARIO}"\nsim_seed = {SEED}\n'
        '[camera]\nsource = "sim"\n'
        '[sync]\nmode = "off"\n[health]\ninterval_s = 0.5\n',
        encoding="utf-8",
    )
    return cfg


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def _status(tmp: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((tmp / "status.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def run_agent(name: str, *, speed: float, seconds: float, camera: bool, hours: float) -> Row:
    """Run one agent process; measure CPU over ``seconds`` (paced) or to the sim's end (speed 0)."""
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as d:
        tmp = Path(d)
        cfg = _write_unit(tmp)
        cmd = [sys.executable, "-m", "shelfsense", "edge", "run", "--config", str(cfg)]
        cmd += ["--speed", str(speed), "--sim-hours", f"{hours:.6f}"]
        if not camera:
            cmd.append("--no-camera")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        ps = psutil.Process(proc.pid)
        peak = 0.0

        def sample() -> None:
            nonlocal peak
            peak = max(peak, ps.memory_info().rss / 2**20)

        try:
            while not _status(tmp):  # workers started
                sample()
                assert proc.poll() is None, "agent exited early"
                time.sleep(0.05)
            if speed > 0:
                end_warm = time.monotonic() + WARMUP_S
                while time.monotonic() < end_warm:
                    sample()
                    time.sleep(0.1)
                c0, w0 = _cpu(ps), time.monotonic()
                while time.monotonic() - w0 < seconds:
                    sample()
                    time.sleep(0.1)
                c1, w1 = _cpu(ps), time.monotonic()
                sim_s = (w1 - w0) * speed
            else:
                c0 = _cpu(ps)
                while not _status(tmp).get("gauges", {}).get("sim_done"):
                    sample()
                    time.sleep(0.05)
                c1 = _cpu(ps)
                sim_s = hours * 3600.0
            sample()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        st = _status(tmp)
        events = int(st.get("counters", {}).get("events_decided", 0))
        return Row(
            name, "real time" if speed else "accelerated", sim_s, c1 - c0, peak, events, code
        )


def simulator_alone(seconds: float) -> Row:
    """CPU of generating the raw counts and rendering the frames of ``seconds`` of traffic."""
    from edge.camera.config import CameraConfig
    from edge.camera.sim import SimulatedSource
    from firmware_bridge.sim.loadcell import LoadCellSim
    from firmware_bridge.sim.scenario import load_scenario
    from firmware_bridge.sim.twin import StoreTwin

    sc = load_scenario(SCENARIO)
    run = StoreTwin(sc, SEED).simulate(seconds)
    cam = CameraConfig.model_validate({"default_slots": len(sc.slots)})
    c0 = time.process_time()
    cells = LoadCellSim(run, sc, SEED)
    n_blocks = sum(1 for _ in cells.blocks(0.5))
    src = SimulatedSource(
        run.visits, zones=cam.zone_specs(), fps=cam.fps, seed=cam.sim_seed, duration_s=seconds
    )
    src.open()
    frames = 0
    while src.read() is not None:
        frames += 1
    cpu = time.process_time() - c0
    rss = psutil.Process().memory_info().rss / 2**20
    return Row(
        "simulator alone",
        "unpaced",
        seconds,
        cpu,
        rss,
        0,
        0,
        {"frames": frames, "blocks": n_blocks},
    )


def table(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    out = [
        "| run | pacing | simulated s | CPU s | CPU s / sim s | peak RSS MB | events |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r.name} | {r.pacing} | {r.sim_s:.0f} | {r.cpu_s:.2f} | {r.per_sim_s:.4f} "
            f"| {r.rss_mb:.0f} | {r.events} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Row]:
    """Run the bench, print the table, return the rows by key."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s paced runs, 3 min accelerated")
    args = ap.parse_args(argv)
    paced_s = 10.0 if args.quick else 60.0
    fast_h = 0.05 if args.quick else 0.25
    hours = (paced_s + WARMUP_S + 60.0) / 3600.0
    rows = {
        "weight": run_agent(
            "weight path alone", speed=1.0, seconds=paced_s, camera=False, hours=hours
        ),
        "full": run_agent("full agent", speed=1.0, seconds=paced_s, camera=True, hours=hours),
        "fast": run_agent("full agent", speed=0.0, seconds=0.0, camera=True, hours=fast_h),
        "sim": simulator_alone(fast_h * 3600.0),
    }
    print(f"## Agent CPU and memory ({SCENARIO}: 16 channels x 80 SPS, camera 320x240 @ 10 fps)\n")
    print(table(list(rows.values())))
    full, fast, sim, weight = rows["full"], rows["fast"], rows["sim"], rows["weight"]
    net = full.per_sim_s - sim.per_sim_s
    print()
    print(f"- full agent / weight path alone (real time): {full.per_sim_s / weight.per_sim_s:.1f}x")
    print(
        f"- accelerated / real time (full agent): {fast.per_sim_s / full.per_sim_s:.2f}x "
        "(paced runs also pay for waking up to wait)"
    )
    print(f"- full agent minus simulator (what sensing and deciding cost): {net:.4f} CPU s / sim s")
    print(
        f"- target <= {CPU_TARGET} of one core: full agent {full.per_sim_s:.4f} "
        f"({'met' if full.per_sim_s <= CPU_TARGET else 'NOT met'}), "
        f"without the simulator {net:.4f} ({'met' if net <= CPU_TARGET else 'NOT met'})"
    )
    peak = max(r.rss_mb for k, r in rows.items() if k != "sim")
    print(
        f"- peak RSS {peak:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB: "
        f"{'met' if peak <= RSS_TARGET_MB else 'NOT met'})"
    )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
