"""Weight path benchmark: MCU bytes to weight changes, how much faster than real time?

A busy bay (16 channels at 80 SPS, the ``busy`` scenario) is simulated and its raw
blocks encoded, outside the timed region, into the byte stream the MCU would send
(:func:`~firmware_bridge.protocol.encode_frame`, one frame per sample instant, the
pty simulator's framing). The timed path is what the edge does with a serial port:
:class:`~firmware_bridge.decoder.Decoder` fed 4 KiB chunks, every simulated second
of frames turned into a block by :func:`~firmware_bridge.decoder.frames_to_block`
and processed by a :class:`~edge.signals.WeightPipeline` calibrated like staff
would. In the same run, on the same data, two baselines: the signal path alone on
the simulator's in-memory blocks, and decoding alone. The process is pinned to one
CPU while timing; figures are simulated seconds per wall second (x real time),
median of the runs, plus the same per CPU second. The changes found via bytes
must equal the in-process ones.

Run: ``.venv/bin/python -m tests.bench.bench_weight_path [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from edge.signals.calibration import ChannelCalibration
from edge.signals.replay import pipeline_for, simulated_calibration
from firmware_bridge.decoder import Decoder, frames_to_block
from firmware_bridge.protocol import DELIMITER, Frame, encode_frame
from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import Scenario, load_scenario
from firmware_bridge.sim.twin import StoreTwin
from models.types import ReadingBlock, ReadingStatus, WeightChange

SCENARIO = "busy"
SEED = 1
CHUNK = 4096
TARGET_X = 200.0
T = TypeVar("T")


def encode_blocks(blocks: Sequence[ReadingBlock]) -> bytes:
    """The MCU byte stream for ``blocks``: a leading delimiter, then one frame per sample."""
    not_ready = int(ReadingStatus.NOT_READY)
    parts = [DELIMITER]
    seq = 0
    for b in blocks:
        us = (np.rint(b.t * 1e6).astype(np.int64) % (1 << 32)).tolist()
        status = np.where(b.valid, 0, not_ready).tolist()
        for counts, st, mcu_us in zip(b.counts.tolist(), status, us, strict=True):
            parts.append(encode_frame(seq, mcu_us, counts, st))
            seq += 1
    return b"".join(parts)


def seconds_of_frames(stream: bytes, sps: int) -> Iterator[ReadingBlock]:
    """Decode ``stream`` in 4 KiB reads; one block per simulated second of frames."""
    decoder = Decoder()
    frames: list[Frame] = []
    for pos in range(0, len(stream), CHUNK):
        frames += decoder.feed(stream[pos : pos + CHUNK])
        whole = len(frames) - len(frames) % sps
        for i in range(0, whole, sps):
            yield frames_to_block(frames[i : i + sps])
        del frames[:whole]
    if frames:
        yield frames_to_block(frames)


def bytes_to_changes(
    stream: bytes, sc: Scenario, cal: dict[int, ChannelCalibration]
) -> list[WeightChange]:
    """The timed path: decode + frames_to_block + WeightPipeline, a simulated second at a time."""
    pipe = pipeline_for(sc, cal)
    out: list[WeightChange] = []
    for block in seconds_of_frames(stream, sc.sps):
        out += pipe.process(block)
    return out


def blocks_to_changes(
    blocks: Sequence[ReadingBlock], sc: Scenario, cal: dict[int, ChannelCalibration]
) -> list[WeightChange]:
    """Baseline: the signal path alone on the simulator's one-second blocks."""
    pipe = pipeline_for(sc, cal)
    out: list[WeightChange] = []
    for block in blocks:
        out += pipe.process(block)
    return out


def bytes_to_blocks(stream: bytes, sps: int) -> list[ReadingBlock]:
    """Baseline: decoding alone, bytes to one-second blocks."""
    return list(seconds_of_frames(stream, sps))


def same_changes(a: Sequence[WeightChange], b: Sequence[WeightChange]) -> bool:
    """Same slots, units and grams; times equal up to float rounding of whole microseconds."""
    return len(a) == len(b) and all(
        x.slot == y.slot
        and x.units == y.units
        and x.grams == y.grams
        and abs(x.t_start - y.t_start) < 1e-6
        and abs(x.t_settled - y.t_settled) < 1e-6
        for x, y in zip(a, b, strict=True)
    )


def same_samples(got: Sequence[ReadingBlock], want: Sequence[ReadingBlock]) -> bool:
    """True when decoded blocks carry exactly the simulated samples at their times."""
    if not got:
        return False
    g_c, w_c = np.concatenate([b.counts for b in got]), np.concatenate([b.counts for b in want])
    g_v, w_v = np.concatenate([b.valid for b in got]), np.concatenate([b.valid for b in want])
    g_t, w_t = np.concatenate([b.t for b in got]), np.concatenate([b.t for b in want])
    return (
        g_c.shape == w_c.shape
        and bool(np.array_equal(g_c, w_c))
        and bool(np.array_equal(g_v, w_v))
        and bool(np.allclose(g_t, w_t, rtol=0, atol=1e-6))
    )


@contextlib.contextmanager
def one_cpu() -> Iterator[str]:
    """Pin this process to one CPU while timing (where the OS allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned"
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, before)


@dataclass
class Row:
    """One timed path: simulated seconds, median wall and CPU seconds of its runs."""

    name: str
    sim_s: float
    wall_s: float
    cpu_s: float
    runs: int
    check: str

    @property
    def x_real_time(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s else float("inf")

    @property
    def x_real_time_cpu(self) -> float:
        return self.sim_s / self.cpu_s if self.cpu_s else float("inf")


def timed(fn: Callable[[], T], runs: int) -> tuple[T, float, float]:
    """The last result of ``runs`` calls, with the median wall and CPU seconds."""
    walls, cpus = [], []
    out = fn()  # warm-up, also the result checked
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return out, statistics.median(walls), statistics.median(cpus)


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| path | simulated s | wall s (median) | x real time | x real time per CPU s | runs | check |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.sim_s:,.0f} | {r.wall_s:.3f} | {r.x_real_time:,.0f} | "
            f"{r.x_real_time_cpu:,.0f} | {r.runs} | {r.check} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="five simulated minutes, 3 runs")
    args = ap.parse_args(argv)
    duration, runs = (300.0, 3) if args.quick else (3600.0, 5)
    sc = load_scenario(SCENARIO)
    run = StoreTwin(sc, SEED).simulate(duration)
    sim = LoadCellSim(run, sc, SEED)
    cal = simulated_calibration(sim)
    blocks = list(sim.blocks(1.0))
    stream = encode_blocks(blocks)

    with one_cpu() as pinned:
        via_bytes, path_wall, path_cpu = timed(lambda: bytes_to_changes(stream, sc, cal), runs)
        in_process, sig_wall, sig_cpu = timed(lambda: blocks_to_changes(blocks, sc, cal), runs)
        decoded, dec_wall, dec_cpu = timed(lambda: bytes_to_blocks(stream, sc.sps), runs)
    same = same_changes(via_bytes, in_process)
    exact = same_samples(decoded, blocks)
    rows = [
        Row("decode + signals (bytes -> changes)", duration, path_wall, path_cpu, runs,
            f"{len(via_bytes)} changes, same as in-process: {same}"),
        Row("baseline: signals alone (in-memory blocks)", duration, sig_wall, sig_cpu, runs,
            f"{len(in_process)} changes"),
        Row("baseline: decode alone (bytes -> blocks)", duration, dec_wall, dec_cpu, runs,
            f"samples exact: {exact}"),
    ]  # fmt: skip
    mode = "quick" if args.quick else "full"
    print(
        f"## weight path benchmark ({mode}: {sc.name}, {sc.channels} ch at {sc.sps} SPS, "
        f"{duration:.0f} simulated s, {len(stream):,} bytes, {pinned})\n"
    )
    print(table(rows))
    path = rows[0].x_real_time
    parts = 1.0 / (1.0 / rows[1].x_real_time + 1.0 / rows[2].x_real_time)
    print(
        f"\n- decode + signals: {path:,.0f}x real time (target {TARGET_X:.0f}x: "
        f"{'met' if path >= TARGET_X else 'NOT met'}); "
        f"the two baselines combined predict {parts:,.0f}x (ratio {path / parts:.2f})"
    )
    print(
        f"- share of the path: signals {rows[1].wall_s / rows[0].wall_s:.0%}, "
        f"decode {rows[2].wall_s / rows[0].wall_s:.0%}"
    )
    return {
        "rows": rows,
        "changes_bytes": via_bytes,
        "changes_in_process": in_process,
        "same_changes": same,
        "samples_exact": exact,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
