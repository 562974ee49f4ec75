"""The serial link on a real pty: a lying frame moves no time; link health tells the state."""

from __future__ import annotations

import logging
import os
import tty
from collections.abc import Iterator

import numpy as np
import pytest

from firmware_bridge.link_health import MIN_DAMAGED, judge_link
from firmware_bridge.protocol import encode_frame
from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.serial_link import SerialLoadCells
from models.types import ReadingBlock
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)
PERIOD_US = 12_500


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A raw pseudo-terminal: the master fd to write the MCU's bytes, the slave's path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(master)
        os.close(slave)


def test_a_frame_whose_crc_matches_but_whose_clock_lies_moves_no_time(
    pty: tuple[int, str], caplog: pytest.LogCaptureFixture
) -> None:
    master, path = pty
    start = 2**32 - 20 * PERIOD_US  # the MCU clock wraps inside the stream
    wire = b"\x00"
    for seq in range(60):
        us = (start + seq * PERIOD_US) % 2**32
        if seq in (30, 41, 42):  # CRC-16 is right, the clock is not (2**31 ahead, then behind)
            lie = (us + 2**31) % 2**32 if seq == 30 else (us - 7 * PERIOD_US) % 2**32
            wire += encode_frame(seq, lie, [-1])
        wire += encode_frame(seq + 1000 if seq in (41, 42) else seq, us, [seq])
    caplog.set_level(logging.WARNING, logger="firmware_bridge.serial_link")
    with SerialLoadCells(path, timebase="mcu", read_timeout=0.1) as link:
        assert link.poll() is None and link.connected  # open first: opening flushes input
        os.write(master, wire)
        got: list[ReadingBlock] = []
        wait_until(lambda: bool(got.append(b) if (b := link.poll()) else None) or _n(got) >= 58)
        stats = link.stats.decoder
    t = np.concatenate([b.t for b in got])
    seqs = np.concatenate([b.counts[:, 0] for b in got])
    assert -1 not in seqs  # no lying frame came through
    # every frame that did is at its true time: nothing moved the clock
    np.testing.assert_allclose(t - t[0], (seqs - seqs[0]) * PERIOD_US * 1e-6, atol=1e-6)
    assert stats.implausible_time >= 3
    warnings = [r for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(warnings) == 1  # one burst, one line


def _n(blocks: list[ReadingBlock]) -> int:
    return sum(len(b) for b in blocks)


@pytest.mark.slow(seconds=10)
def test_link_health_ok_damaged_silent_and_unplugged() -> None:
    rng = np.random.default_rng(4)
    block = ReadingBlock(
        t=np.arange(800) / 80.0,
        counts=rng.integers(-1000, 1000, (800, 4)).astype(np.int32),
        valid=np.ones((800, 4), dtype=bool),
    )
    mcu = PtyMcu([block], realtime=True, record=False)
    mcu.inject_bad_crc(3 * MIN_DAMAGED)  # the start of the stream drowns in CRC errors
    mcu.start()
    link = SerialLoadCells(mcu.path, read_timeout=0.05, stale_after=0.5, backoff_max=0.2)
    try:
        states: set[str] = set()

        def seen(state: str) -> bool:
            link.poll()
            states.add(link.link_health().state)
            return state in states

        wait_until(lambda: seen("damaged"), timeout=20)
        wait_until(lambda: seen("ok"), timeout=20)
        mcu.wait_done(20)
        wait_until(lambda: seen("silent"), timeout=20)  # open, but nothing comes
        mcu.stop()
        wait_until(lambda: seen("unplugged"), timeout=20)
    finally:
        link.close()
        mcu.stop()


def test_judge_link_states() -> None:
    def j(**kw: object) -> str:
        args = {"connected": True, "since_frame_s": 0.1, "good": 80, "damaged": 0}
        return judge_link(**{**args, **kw}, stale_after=2.0).state  # type: ignore[arg-type]

    assert j() == "ok"
    assert j(connected=False) == "unplugged"
    assert j(since_frame_s=3.0) == j(since_frame_s=float("inf")) == "silent"
    assert j(good=5, damaged=MIN_DAMAGED) == "damaged"
    assert j(good=80, damaged=MIN_DAMAGED) == "ok"  # a few CRC errors are no outage
    assert j(good=0, damaged=MIN_DAMAGED - 1) == "ok"
