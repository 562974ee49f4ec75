"""The serial path end to end: simulator on a pty -> reader -> signals, against in-process.

A busy bay (16 channels at 80 SPS) is simulated for ten minutes. In process, the
simulated blocks go straight into a :class:`~edge.signals.WeightPipeline`
(:func:`~edge.signals.replay.detect_changes`). Over serial, the same blocks are
served by :class:`~firmware_bridge.pty_mcu.PtyMcu` on a real pseudo-terminal, read
by :class:`~firmware_bridge.serial_link.SerialLoadCells` (MCU timebase, so times
line up) in whatever chunks the reads return, and fed to a pipeline with the same
calibration. Both must find the same weight changes, and the reader must have seen
every frame; with damage injected into the stream, the frames hit are dropped and
counted, and the changes are still the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from edge.signals.calibration import ChannelCalibration
from edge.signals.pipeline import WeightPipeline
from edge.signals.replay import detect_changes, pipeline_for, simulated_calibration
from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.serial_link import SerialLoadCells
from firmware_bridge.sim.loadcell import LoadCellSim
from firmware_bridge.sim.scenario import Scenario, load_scenario
from firmware_bridge.sim.twin import SimRun, StoreTwin
from models.types import ReadingBlock, WeightChange

pytestmark = pytest.mark.timeout(90)

SEED = 1
DURATION_S = 600.0
WAIT_S = 45.0  # upper bound for the stream to arrive; never a measured figure
T_TOL_S = 0.002  # sample times travel as whole microseconds
GRAMS_TOL = 0.011  # changes report grams rounded to 0.01


@dataclass(frozen=True)
class Bay:
    """One simulated run of a bay, with what the in-process path finds in it."""

    scenario: Scenario
    run: SimRun
    sim: LoadCellSim
    calibration: dict[int, ChannelCalibration]
    changes: list[WeightChange]

    def blocks(self) -> Iterator[ReadingBlock]:
        """The run's raw blocks again, from a fresh (identically seeded) simulator."""
        return LoadCellSim(self.run, self.scenario, SEED).blocks(1.0)

    def pipeline(self) -> WeightPipeline:
        """A fresh pipeline with the same (staff-style) calibration as in process."""
        return pipeline_for(self.scenario, self.calibration)


@pytest.fixture(scope="module")
def bay() -> Bay:
    sc = load_scenario("busy")
    assert sc.channels == 16 and sc.sps == 80
    run = StoreTwin(sc, SEED).simulate(DURATION_S)
    changes = detect_changes(run, sc)
    # the comparison means something only if the run is busy across the bay
    assert len(changes) >= 10
    assert len({c.slot for c in changes}) >= 5
    sim = LoadCellSim(run, sc, SEED)
    return Bay(sc, run, sim, simulated_calibration(sim), changes)


@dataclass
class Received:
    """What came out of the serial side."""

    changes: list[WeightChange]
    t: np.ndarray
    counts: np.ndarray
    link: SerialLoadCells
    mcu: PtyMcu


def serve_and_read(bay: Bay, mcu: PtyMcu) -> Received:
    """Serve through ``mcu``, read with SerialLoadCells, feed every read to a pipeline."""
    pipe = bay.pipeline()
    changes: list[WeightChange] = []
    ts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    deadline = time.monotonic() + WAIT_S
    with mcu, SerialLoadCells(mcu.path, timebase="mcu", read_timeout=0.2) as link:
        while time.monotonic() < deadline:
            done = mcu.done.is_set()  # before the read: a silent read after it means drained
            block = link.poll()
            if block is None:
                if done:
                    break
                continue
            ts.append(block.t)
            counts.append(block.counts)
            changes += pipe.process(block)
        assert mcu.error is None
        assert mcu.done.is_set(), "the stream did not finish in time"
    return Received(changes, np.concatenate(ts), np.concatenate(counts), link, mcu)


def mismatches(
    got: Sequence[WeightChange],
    want: Sequence[WeightChange],
    *,
    t_tol: float,
    grams_tol: float,
) -> list[str]:
    """Differences between two change lists: same slot and units, grams and times close."""
    if len(got) != len(want):
        return [f"{len(got)} changes, expected {len(want)}: {got} vs {want}"]
    out = []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        # a 0-unit change starts where a slow lean first left the stable band: that
        # crossing may fall one decimated sample (0.1 s) apart when blocks split otherwise
        slack = (0.1, 0.5) if g.units == w.units == 0 else (0.0, 0.0)
        if (
            g.slot != w.slot
            or g.units != w.units
            or abs(g.grams - w.grams) > grams_tol + slack[1]
            or abs(g.t_start - w.t_start) > t_tol + slack[0]
            or abs(g.t_settled - w.t_settled) > t_tol
        ):
            out.append(f"#{i}: {g} vs {w}")
    return out


def test_serial_path_finds_the_same_changes_as_in_process(bay: Bay) -> None:
    n = bay.sim.n_samples
    got = serve_and_read(bay, PtyMcu(bay.blocks()))
    stats = got.link.stats.decoder
    # nothing silently lost: every frame arrived, intact and in sequence
    assert got.mcu.frames_sent == n
    assert stats.frames == n
    assert stats.dropped == 0 and stats.crc_errors == 0
    assert stats.seq_gaps == 0 and stats.lost_frames == 0
    assert stats.duplicates == 0 and stats.seq_restarts == 0
    assert got.link.stats.disconnects == 0
    # the samples are the simulator's, at the simulator's times
    want = np.concatenate([b.counts for b in bay.blocks()])
    np.testing.assert_array_equal(got.counts, want)
    np.testing.assert_allclose(got.t, np.arange(n) / bay.scenario.sps, rtol=0, atol=1e-6)
    assert mismatches(got.changes, bay.changes, t_tol=T_TOL_S, grams_tol=GRAMS_TOL) == []


# ------------------------------------------------------------------ damaged stream


def quiet_sample(changes: Sequence[WeightChange], sps: int, duration_s: float) -> int:
    """A sample index at least 3 s away from every change found (mid-second, odd)."""
    for second in range(5, int(duration_s) - 5):
        if all(not (c.t_start - 3 <= second <= c.t_settled + 3) for c in changes):
            return second * sps + sps // 2 + 3
    raise AssertionError("no quiet stretch in the run")


def damage_plan(bay: Bay) -> dict[int, str]:
    """Where each fault goes: before which sample index (mid-change, and one quiet)."""
    sps = bay.scenario.sps
    ch = bay.changes

    def mid(c: WeightChange) -> int:
        return round((c.t_start + c.t_settled) / 2 * sps)

    plan = {
        mid(ch[1]): "bad_crc",  # one frame with a flipped CRC bit
        mid(ch[len(ch) // 2]): "garbage_hit",  # junk then no delimiter: eats the next frame
        mid(ch[-2]): "truncated_2",  # two frames cut short in a row
        quiet_sample(ch, sps, bay.run.duration_s): "garbage_between",  # junk, own delimiter
    }
    assert len(plan) == 4
    return plan


def damaged_feed(
    bay: Bay, plan: Mapping[int, str], mcu_ref: list[PtyMcu]
) -> Iterator[ReadingBlock]:
    """The run's blocks, cut at the planned samples, queueing each fault just before it.

    Runs in the PtyMcu thread: a fault queued between two blocks hits the next frame.
    """
    sps = bay.scenario.sps
    for b in bay.blocks():
        i0 = round(float(b.t[0]) * sps)
        a = 0
        for cut in sorted(k - i0 for k in plan if 0 <= k - i0 < len(b)):
            if cut > a:
                yield ReadingBlock(b.t[a:cut], b.counts[a:cut], b.valid[a:cut])
            mcu = mcu_ref[0]
            kind = plan[i0 + cut]
            if kind == "bad_crc":
                mcu.inject_bad_crc()
            elif kind == "garbage_hit":
                mcu.inject_garbage(b"\x05junk\x00\x7fnoise\x13")
            elif kind == "truncated_2":
                mcu.inject_truncated(2)
            else:
                mcu.inject_garbage(b"\x7f\x01line noise\x00")
            a = cut
        yield ReadingBlock(b.t[a:], b.counts[a:], b.valid[a:])


def without(blocks: Iterator[ReadingBlock], lost: set[int], sps: int) -> Iterator[ReadingBlock]:
    """``blocks`` minus the samples at the ``lost`` indices (what a reader can receive)."""
    for b in blocks:
        keep = np.array([round(float(t) * sps) not in lost for t in b.t], dtype=bool)
        if keep.any():
            yield ReadingBlock(b.t[keep], b.counts[keep], b.valid[keep])


def test_damaged_frames_are_dropped_counted_and_change_nothing(bay: Bay) -> None:
    sps = bay.scenario.sps
    n = bay.sim.n_samples
    plan = damage_plan(bay)
    by_kind = {kind: k for k, kind in plan.items()}
    hit = {by_kind["bad_crc"], by_kind["garbage_hit"]}
    hit |= {by_kind["truncated_2"], by_kind["truncated_2"] + 1}
    mcu_ref: list[PtyMcu] = []
    mcu = PtyMcu(damaged_feed(bay, plan, mcu_ref))
    mcu_ref.append(mcu)
    got = serve_and_read(bay, mcu)

    # the pty damaged exactly the frames planned (garbage leaves frames intact on its side)
    damaged = [i for i, s in enumerate(mcu.sent) if not s.intact]
    assert damaged == sorted(hit - {by_kind["garbage_hit"]})
    assert mcu.frames_sent == n
    # the reader dropped and counted exactly those, and went on
    stats = got.link.stats.decoder
    assert stats.frames == n - len(hit)
    assert stats.crc_errors == 1
    # junk segment + eaten frame, two truncated frames, the junk between frames
    assert stats.malformed == 2 + 2 + 1
    assert stats.seq_gaps == 3 and stats.lost_frames == len(hit)
    assert stats.duplicates == 0 and stats.seq_restarts == 0
    assert got.link.stats.disconnects == 0
    keep = np.array([i not in hit for i in range(n)])
    want_counts = np.concatenate([b.counts for b in bay.blocks()])[keep]
    np.testing.assert_array_equal(got.counts, want_counts)
    np.testing.assert_allclose(got.t, (np.arange(n) / sps)[keep], rtol=0, atol=1e-6)

    # exactly what the in-process path finds when it misses the same samples...
    same_loss = bay.pipeline().run(without(bay.blocks(), hit, sps))
    assert mismatches(got.changes, same_loss, t_tol=T_TOL_S, grams_tol=GRAMS_TOL) == []
    # ...which are the same changes as with nothing lost: a lost sample shifts the
    # decimation groups after it by one sample, so a settle time may move by a few
    # decision periods and a level by a fraction of the settle band, no more
    period = 1.0 / bay.pipeline().rate_hz
    assert mismatches(got.changes, bay.changes, t_tol=3 * period, grams_tol=2.0) == []
