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
4. **full agent with a model bundle** installed, paced and accelerated (``--quick``:
   accelerated only): the student
   decides instead of the rules (a bundle of the shipped ``student`` shape, exported,
   int8-quantized and signed here with random weights: memory and CPU depend on the
   shape, not on what it learnt). Needs torch in the bench process to make the bundle;
   the agent itself never imports it. ``--no-model`` skips these rows.
5. **simulator alone**, in the bench process: rendering the camera frames and
   generating the raw counts of the same stretch; on a unit the sensors do that, so
   "agent minus simulator" is the figure a Pi pays for sensing and deciding.

Targets: full agent <= 0.05 of one core per simulated second, peak RSS <= 150 MB
(rules) and <= 120 MB aimed at with the model.

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
MODEL_RSS_AIM_MB = 120.0
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


def build_bundle(
    tmp: Path, arch: str = "student", *, version: int = 1, key: Any = None
) -> tuple[Path, Path]:
    """A signed int8 bundle of the ``arch`` shape (random weights); returns it and its key.

    The weights come from one seed, so bundles of different ``version`` decide alike;
    ``key``: sign with this Ed25519 key (a new one when None).
    """
    import torch

    from models.bundle import MODEL_ONNX, generate_key, public_key_pem, write_bundle
    from models.runtime.onnx import OnnxBackend
    from models.tokens import ShelfTokenizer
    from models.train.data import encode_records, split_records
    from models.train.export import export_onnx, quantize_int8
    from models.train.model import build_model
    from models.train.pipeline import golden_batches
    from tests.models.factory import make_records

    torch.manual_seed(0)
    tok = ShelfTokenizer.default()
    model = build_model(arch, vocab_size=tok.vocab_size, max_len=tok.max_len)
    fp32, int8 = tmp / f"fp32-v{version}.onnx", tmp / f"int8-v{version}.onnx"
    export_onnx(model, fp32)
    quantize_int8(fp32, int8)
    items = encode_records(split_records(make_records(12, 0), tok), tok)
    golden = golden_batches(OnnxBackend(int8), items, (1, 8))
    key = key if key is not None else generate_key()
    dest = tmp / ("bundle" if version == 1 else f"bundle-v{version}")
    write_bundle(
        dest,
        files={MODEL_ONNX: int8},
        tokenizer=tok,
        golden=golden,
        version=version,
        model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
        metrics={},
        signing_key=key,
    )
    trusted = tmp / "trusted.pem"
    trusted.write_bytes(public_key_pem(key))
    return dest, trusted


def _write_unit(tmp: Path, bundle: tuple[Path, Path] | None = None) -> Path:
    cfg = tmp / "unit.toml"
    text = (
        f'[unit]\ndevice_id = "bench-agent"\ndata_dir = "{tmp}"\n'
        f'[loadcells]\nsource = "sim"\nsim_scenario = "{SCENARIO}"\nsim_seed = {SEED}\n'
        '[camera]\nsource = "sim"\n'
        '[sync]\nmode = "off"\n[health]\ninterval_s = 0.5\n'
    )
    if bundle is not None:
        text += f'[model]\nbundle_dir = "{bundle[0]}"\ntrusted_key = "{bundle[1]}"\n'
    cfg.write_text(text, encoding="utf-8")
    return cfg


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def _status(tmp: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((tmp / "status.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def run_agent(
    name: str,
    *,
    speed: float,
    seconds: float,
    camera: bool,
    hours: float,
    bundle: tuple[Path, Path] | None = None,
) -> Row:
    """Run one agent process; measure CPU over ``seconds`` (paced) or to the sim's end (speed 0)."""
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as d:
        tmp = Path(d)
        cfg = _write_unit(tmp, bundle)
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
        gauges = st.get("gauges", {})
        extra = {"decided_by": gauges.get("decided_by"), "model": gauges.get("model_version")}
        return Row(
            name,
            "real time" if speed else "accelerated",
            sim_s,
            c1 - c0,
            peak,
            events,
            code,
            extra,
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
    ap.add_argument("--no-model", action="store_true", help="skip the rows with a model bundle")
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
    }
    if not args.no_model:
        with tempfile.TemporaryDirectory(prefix="bench-bundle-") as d:
            bundle = build_bundle(Path(d))
            if not args.quick:  # the quick run keeps the accelerated model row only
                rows["model"] = run_agent(
                    "full agent, model",
                    speed=1.0,
                    seconds=paced_s,
                    camera=True,
                    hours=hours,
                    bundle=bundle,
                )
            rows["model_fast"] = run_agent(
                "full agent, model",
                speed=0.0,
                seconds=0.0,
                camera=True,
                hours=fast_h,
                bundle=bundle,
            )
    rows["sim"] = simulator_alone(fast_h * 3600.0)
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
    peak = max(r.rss_mb for k, r in rows.items() if k in ("weight", "full", "fast"))
    print(
        f"- peak RSS, rules deciding {peak:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB: "
        f"{'met' if peak <= RSS_TARGET_MB else 'NOT met'})"
    )
    model_rows = [r for k, r in rows.items() if k.startswith("model")]
    if model_rows:
        mpeak = max(r.rss_mb for r in model_rows)
        by = {r.extra.get("decided_by") for r in model_rows}
        print(
            f"- peak RSS, model deciding {mpeak:.0f} MB (aim <= {MODEL_RSS_AIM_MB:.0f} MB: "
            f"{'met' if mpeak <= MODEL_RSS_AIM_MB else 'NOT met'}); decided by {sorted(map(str, by))}"
        )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
