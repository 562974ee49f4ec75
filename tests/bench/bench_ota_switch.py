"""A model switch on a running unit: decisions missed, decided twice, and how long it takes.

The agent runs as its own process (``shelfsense edge run``, sim mode, the ``busy``
scenario with camera, paced at ``--speed`` times real time, sync off so every event
stays in its outbox) with an int8 bundle of the shipped ``student`` shape installed
through the A/B slots as v1. Two runs of the same simulated stretch, in the same
process:

* ``baseline``: v1 decides throughout;
* ``switch``: when ``--at`` of the stretch has been decided, v2 (the same weights,
  signed again under version 2) is installed with ``shelfsense edge install-model``
  into the other slot, and the running agent's decision worker loads, verifies (golden
  outputs) and warms it while v1 goes on deciding, then swaps: the path an OTA switch
  takes after its download and checks.

Read back from the outbox: windows decided (the events that carry a window; each
window's ``episode`` comes from one counter, so a missing number is a window never
decided and a repeated one a window decided twice), events per model version, whether
any v1 event follows the first v2 event in seq order, seq gaps. Switch time: from
``install-model`` returning (the pointer switched) to the agent's status saying v2
decides (status written every 0.25 s; includes up to ``ota.watch_poll_s``, set to
0.5 s here, before the worker looks). Longest pause in deciding: the longest stretch
of wall time in which the decision worker's ``decided_until`` (the simulated instant
its passes have reached; each pass moves it, windows or not) did not move, against
the baseline: the time the switch held the decision thread.

``.venv/bin/python -m tests.bench.bench_ota_switch [--quick] [--speed S] [--minutes M]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.bench_agent import REPO, SCENARIO, SEED, build_bundle

WATCH_POLL_S = 0.5


@dataclass
class Run:
    """What one agent run decided, and how it switched."""

    name: str
    windows: int
    missed: int
    twice: int
    events_by_version: dict[int | None, int]
    v1_after_v2: int
    seq_gaps: int
    switch_s: float | None
    longest_pause_s: float

    def line(self) -> str:
        versions = ", ".join(
            f"v{k}: {n}" for k, n in sorted(self.events_by_version.items(), key=str)
        )
        switch = "-" if self.switch_s is None else f"{self.switch_s:.2f}"
        return (
            f"| {self.name} | {self.windows} | {self.missed} | {self.twice} | {versions} "
            f"| {self.v1_after_v2} | {self.seq_gaps} | {switch} | {self.longest_pause_s:.2f} |"
        )


HEADER = (
    "| run | windows decided | missed | decided twice | events by version "
    "| v1 after v2 | seq gaps | switch s | longest pause in deciding s |\n"
    "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
)


def _status(data: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((data / "status.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _unit(data: Path, key_pem: Path) -> Path:
    cfg = data / "unit.toml"
    cfg.write_text(
        f'[unit]\ndevice_id = "bench-switch"\ndata_dir = "{data}"\n'
        f'[loadcells]\nsource = "sim"\nsim_scenario = "{SCENARIO}"\nsim_seed = {SEED}\n'
        '[camera]\nsource = "sim"\n'
        '[sync]\nmode = "off"\n[health]\ninterval_s = 0.25\n'
        f'[model]\nbundle_dir = "{data / "models" / "current"}"\ntrusted_key = "{key_pem}"\n'
        f"[ota]\nwatch_poll_s = {WATCH_POLL_S}\n",
        encoding="utf-8",
    )
    return cfg


def _shelfsense(*args: str) -> list[str]:
    return [sys.executable, "-m", "shelfsense", *args]


def _install(cfg: Path, bundle: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        _shelfsense("edge", "install-model", str(bundle), "--config", str(cfg)),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"install-model failed: {done.stdout}{done.stderr}")


def _outbox(data: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{data / 'buffer.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq, body FROM outbox ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(body) | {"seq": seq} for seq, body in rows]


def read_back(name: str, events: list[dict[str, Any]], switch_s: float | None, pause: float) -> Run:
    """The figures of one run from its events (in seq order)."""
    episodes = sorted(e["window"]["episode"] for e in events if e.get("window"))
    distinct = sorted(set(episodes))
    missed = (distinct[-1] - distinct[0] + 1 - len(distinct)) if distinct else 0
    by_version: dict[int | None, int] = {}
    for e in events:
        by_version[e.get("model_version")] = by_version.get(e.get("model_version"), 0) + 1
    first_v2 = next((e["seq"] for e in events if e.get("model_version") == 2), None)
    v1_after = (
        0
        if first_v2 is None
        else sum(1 for e in events if e["seq"] > first_v2 and e.get("model_version") == 1)
    )
    seqs = [e["seq"] for e in events]
    gaps = sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)
    return Run(
        name,
        len(distinct),
        missed,
        len(episodes) - len(distinct),
        by_version,
        v1_after,
        gaps,
        switch_s,
        pause,
    )


def run_agent(
    name: str,
    tmp: Path,
    bundles: tuple[Path, Path],
    key_pem: Path,
    *,
    speed: float,
    minutes: float,
    at: float | None,
) -> Run:
    """One agent run; with ``at``, v2 is installed once that share of the stretch is decided."""
    data = tmp / name
    data.mkdir()
    cfg = _unit(data, key_pem)
    _install(cfg, bundles[0])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = _shelfsense("edge", "run", "--config", str(cfg), "--speed", str(speed))
    cmd += ["--sim-hours", f"{minutes / 60:.6f}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    end_s = minutes * 60
    installed_at: float | None = None
    switch_s: float | None = None
    last_decided, last_change, pause = -1.0, time.monotonic(), 0.0
    shown = -1
    try:
        while True:
            assert proc.poll() is None, f"{name}: the agent exited early"
            st = _status(data)
            gauges = st.get("gauges", {})
            now = time.monotonic()
            decided = float(gauges.get("decided_until") or 0.0)
            if decided != last_decided:
                if last_decided >= 0:
                    pause = max(pause, now - last_change)
                last_decided, last_change = decided, now
            if at is not None and installed_at is None and decided >= at * end_s:
                _install(cfg, bundles[1])
                installed_at = time.monotonic()
            if installed_at is not None and switch_s is None and gauges.get("model_version") == 2:
                switch_s = time.monotonic() - installed_at
            share = int(10 * decided / end_s)
            if share != shown:
                shown = share
                print(f"  {name}: {min(100, share * 10)} % decided", flush=True)
            if gauges.get("sim_done"):
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)  # the next sample, or at once if the agent exits
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return read_back(name, _outbox(data), switch_s, pause)


def run(speed: float, minutes: float, at: float) -> list[Run]:
    """Baseline and switch on the same stretch; prints and returns both."""
    from models.bundle import generate_key

    with tempfile.TemporaryDirectory(prefix="bench-ota-switch-") as d:
        tmp = Path(d)
        key = generate_key()
        v1, key_pem = build_bundle(tmp, version=1, key=key)
        v2, _ = build_bundle(tmp, version=2, key=key)
        print(
            f"{SCENARIO} seed {SEED}, {minutes:g} simulated min at {speed:g}x, camera on, "
            f"int8 student bundle (random weights); v2 installed at {at:.0%} of the stretch",
            flush=True,
        )
        rows = [
            run_agent("baseline", tmp, (v1, v2), key_pem, speed=speed, minutes=minutes, at=None),
            run_agent("switch", tmp, (v1, v2), key_pem, speed=speed, minutes=minutes, at=at),
        ]
    print(HEADER)
    for r in rows:
        print(r.line())
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 simulated minutes")
    ap.add_argument("--speed", type=float, default=10.0, help="times real time (default 10)")
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated minutes (default 10)")
    ap.add_argument("--at", type=float, default=0.4, help="share of the stretch before v2")
    args = ap.parse_args()
    run(args.speed, 2.0 if args.quick else args.minutes, args.at)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
