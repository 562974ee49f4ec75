"""MCU protocol benchmark: how fast does the host decode 16-channel frames?

A stream of frames (16 channels at 80 SPS, counts like a loaded cell with noise,
1 % of samples flagged) is encoded in memory, then decoded as a serial reader
would: :class:`~firmware_bridge.decoder.Decoder` fed 4 KiB chunks, and the frames
turned into one-second :class:`~models.types.ReadingBlock` s with
:func:`~firmware_bridge.protocol.frames_to_block`. The baseline, run in the same
process on the same bytes, is a plain decoder: a byte-at-a-time state machine,
block-by-block COBS and one ``int.from_bytes`` per field. Figures are medians of
several runs; "x real time" divides frames per second by 80.

Run: ``.venv/bin/python -m tests.bench.bench_decode [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from binascii import crc_hqx
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from firmware_bridge.decoder import Decoder, frames_to_block
from firmware_bridge.protocol import Frame, encode_frame
from models.types import ReadingBlock

SPS = 80
CHANNELS = 16
CHUNK = 4096
TARGET_X = 200.0


def make_stream(n_frames: int, *, seed: int = 7) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Encoded frames plus the counts and statuses they carry."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-400_000, 900_000, CHANNELS)
    counts = (base + rng.normal(0, 40, (n_frames, CHANNELS))).astype(np.int64)
    status = np.where(rng.random((n_frames, CHANNELS)) < 0.01, 2, 0)
    us = (np.arange(n_frames, dtype=np.int64) * 1_000_000 // SPS) + 4_294_000_000
    stream = b"\x00" + b"".join(
        encode_frame(i, int(us[i]), c, s)
        for i, (c, s) in enumerate(zip(counts.tolist(), status.tolist(), strict=True))
    )
    return stream, counts, status


def decode_fast(stream: bytes) -> list[ReadingBlock]:
    """The shipped path: Decoder in serial-sized chunks, then one-second blocks."""
    decoder = Decoder()
    frames: list[Frame] = []
    for pos in range(0, len(stream), CHUNK):
        frames += decoder.feed(stream[pos : pos + CHUNK])
    return [frames_to_block(frames[i : i + SPS]) for i in range(0, len(frames), SPS)]


def decode_plain(stream: bytes) -> list[ReadingBlock]:
    """Baseline: the textbook decoder, byte by byte."""
    rows: list[tuple[int, list[int], list[int]]] = []
    segment = bytearray()
    for byte in stream:
        if byte != 0:
            segment.append(byte)
            continue
        if segment:
            payload = bytearray()
            pos = 0
            while pos < len(segment):
                code = segment[pos]
                payload += segment[pos + 1 : pos + code]
                pos += code
                if code < 255 and pos < len(segment):
                    payload.append(0)
            if crc_hqx(bytes(payload), 0) == 0 and payload[0] == 1:
                n = payload[1]
                us = int.from_bytes(payload[4:8], "little")
                counts = [
                    int.from_bytes(payload[8 + 4 * c : 12 + 4 * c], "little", signed=True)
                    for c in range(n)
                ]
                rows.append((us, counts, list(payload[8 + 4 * n : 8 + 5 * n])))
        segment = bytearray()
    clock = np.array([r[0] for r in rows], dtype=np.int64)
    clock[1:] = clock[0] + np.cumsum(np.diff(clock) % (1 << 32))  # the u32 clock wraps
    blocks = []
    for i in range(0, len(rows), SPS):
        part = rows[i : i + SPS]
        blocks.append(
            ReadingBlock(
                t=clock[i : i + SPS].astype(np.float64) * 1e-6,
                counts=np.array([r[1] for r in part], dtype=np.int32),
                valid=np.array([r[2] for r in part]) == 0,
            )
        )
    return blocks


@dataclass
class Row:
    """One decoder's figures."""

    name: str
    frames: int
    median_s: float
    runs: int

    @property
    def fps(self) -> float:
        return self.frames / self.median_s

    @property
    def x_real_time(self) -> float:
        return self.fps / SPS


def time_it(
    fn: Callable[[bytes], list[ReadingBlock]], stream: bytes, runs: int
) -> tuple[float, list[ReadingBlock]]:
    """Median wall seconds of ``runs`` calls, and the last result."""
    times = []
    out: list[ReadingBlock] = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn(stream)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def check(blocks: list[ReadingBlock], counts: np.ndarray, status: np.ndarray) -> bool:
    """True when the blocks carry exactly the encoded samples, times one period apart."""
    got = np.concatenate([b.counts for b in blocks])
    valid = np.concatenate([b.valid for b in blocks])
    t = np.concatenate([b.t for b in blocks])
    return (
        got.shape == counts.shape
        and bool(np.array_equal(got, counts))
        and bool(np.array_equal(valid, status == 0))
        and bool(np.allclose(np.diff(t), 1 / SPS, atol=2e-6))
    )


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller stream, fewer runs")
    args = ap.parse_args(argv)
    n_frames, runs = (4_000, 3) if args.quick else (100_000, 5)
    stream, counts, status = make_stream(n_frames)
    fast_s, fast_out = time_it(decode_fast, stream, runs)
    plain_s, plain_out = time_it(decode_plain, stream, runs)
    rows = [
        Row("Decoder + frames_to_block", n_frames, fast_s, runs),
        Row("baseline: byte-by-byte", n_frames, plain_s, runs),
    ]
    ok_fast, ok_plain = check(fast_out, counts, status), check(plain_out, counts, status)
    mode = "quick" if args.quick else "full"
    print(f"## decode benchmark ({mode}: {n_frames} frames x {CHANNELS} ch, {len(stream)} bytes)\n")
    print("| decoder | frames/s (median) | x real time @80 SPS | runs | exact |")
    print("| --- | ---: | ---: | ---: | --- |")
    for row, ok in zip(rows, (ok_fast, ok_plain), strict=True):
        print(f"| {row.name} | {row.fps:,.0f} | {row.x_real_time:,.0f} | {row.runs} | {ok} |")
    speedup = plain_s / fast_s
    print(
        f"\nspeed-up over the baseline: {speedup:.1f}x; target {TARGET_X:.0f}x real time: "
        f"{'met' if rows[0].x_real_time >= TARGET_X else 'NOT met'}"
    )
    return {"rows": rows, "exact": (ok_fast, ok_plain), "speedup": speedup}


if __name__ == "__main__":
    main()
