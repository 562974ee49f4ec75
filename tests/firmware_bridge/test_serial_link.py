"""The serial link against a real pseudo-terminal on which PtyMcu speaks the protocol."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from firmware_bridge.pty_mcu import PtyMcu
from firmware_bridge.serial_link import SerialLoadCells
from models.types import ReadingBlock

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20.0  # upper bound for a stream to arrive; never a measured figure


def make_block(n: int, channels: int, *, seed: int, t0: float = 0.0) -> ReadingBlock:
    rng = np.random.default_rng(seed)
    return ReadingBlock(
        t=t0 + np.arange(n) / 80.0,
        counts=rng.integers(-(2**23), 2**23, (n, channels)).astype(np.int32),
        valid=rng.random((n, channels)) > 0.1,
    )


def read_until(link: SerialLoadCells, done: Callable[[list[ReadingBlock]], bool]) -> ReadingBlock:
    got: list[ReadingBlock] = []
    deadline = time.monotonic() + WAIT_S
    while not done(got) and time.monotonic() < deadline:
        block = link.poll()
        if block is not None:
            got.append(block)
    assert got, "nothing arrived"
    return ReadingBlock(
        t=np.concatenate([b.t for b in got]),
        counts=np.concatenate([b.counts for b in got]),
        valid=np.concatenate([b.valid for b in got]),
    )


def total(n: int) -> Callable[[list[ReadingBlock]], bool]:
    return lambda got: sum(len(b) for b in got) >= n


def test_reader_gets_what_the_pty_sent() -> None:
    block = make_block(600, 8, seed=1, t0=5.0)
    with PtyMcu([block]) as mcu, SerialLoadCells(mcu.path, timebase="mcu") as link:
        got = read_until(link, total(len(block)))
        assert mcu.wait_done(WAIT_S)
        assert len(mcu.sent) == len(block)
        np.testing.assert_array_equal(got.counts, block.counts)
        np.testing.assert_array_equal(got.valid, block.valid)
        np.testing.assert_allclose(got.t, block.t, atol=1e-6)
        assert link.stats.decoder.dropped == 0
        assert link.stats.decoder.seq_gaps == 0
        assert link.stats.frames == len(block)
        assert link.healthy


def test_garbage_and_corruption_are_counted_and_stream_continues() -> None:
    first, second = make_block(100, 4, seed=2), make_block(100, 4, seed=3, t0=1.25)

    def feed() -> Iterator[ReadingBlock]:
        yield first
        mcu.inject_bad_crc()  # first frame of the second block
        mcu.inject_garbage(b"\x7fnot a frame\x00")
        mcu.inject_truncated()  # second frame of the second block
        yield second

    mcu = PtyMcu(feed())  # the generator runs in mcu's thread, after this assignment
    with mcu, SerialLoadCells(mcu.path, timebase="mcu") as link:
        got = read_until(link, total(len(first) + len(second) - 2))
        intact = [s for s in mcu.sent if s.intact]
        assert len(intact) == len(first) + len(second) - 2
        np.testing.assert_array_equal(got.counts, np.array([s.counts for s in intact]))
        stats = link.stats.decoder
        assert stats.crc_errors == 1
        assert stats.malformed == 2  # the garbage segment and the truncated frame
        assert stats.seq_gaps == 1 and stats.lost_frames == 2
        assert link.stats.disconnects == 0


def test_silent_port_yields_nothing_and_returns() -> None:
    with PtyMcu([]) as mcu, SerialLoadCells(mcu.path, read_timeout=0.1) as link:
        assert [link.poll() for _ in range(3)] == [None, None, None]
        polls = iter(range(3))
        assert list(link.blocks(1.0, until=lambda: next(polls, None) is None)) == []
        assert link.connected and not link.healthy
        assert link.stats.opens == 1 and link.stats.reads >= 3
        assert link.stats.frames == 0


def test_blocks_cut_at_block_duration() -> None:
    block = make_block(400, 3, seed=4)
    with PtyMcu([block]) as mcu, SerialLoadCells(mcu.path, timebase="mcu") as link:
        out: list[ReadingBlock] = []
        for b in link.blocks(1.0, until=lambda: sum(len(x) for x in out) >= 320):
            out.append(b)
        assert [len(b) for b in out] == [80, 80, 80, 80]
        np.testing.assert_array_equal(np.concatenate([b.counts for b in out]), block.counts[:320])


def test_realtime_stream_with_a_pause_continues() -> None:
    block = make_block(120, 2, seed=7)
    mcu: PtyMcu

    def feed() -> Iterator[ReadingBlock]:
        yield ReadingBlock(t=block.t[:60], counts=block.counts[:60], valid=block.valid[:60])
        mcu.inject_pause(0.3)
        yield ReadingBlock(t=block.t[60:], counts=block.counts[60:], valid=block.valid[60:])

    mcu = PtyMcu(feed(), realtime=True, sps=400)
    with mcu, SerialLoadCells(mcu.path, read_timeout=0.05, timebase="mcu") as link:
        got = read_until(link, total(len(block)))
        np.testing.assert_array_equal(got.counts, block.counts)
        assert link.stats.decoder.dropped == 0 and link.stats.disconnects == 0


def _point(link_path: Path, target: str) -> None:
    tmp = link_path.with_suffix(".new")
    os.symlink(target, tmp)
    os.replace(tmp, link_path)  # atomic, as udev swaps /dev/serial/by-id links


def test_unplug_and_replug_reconnects(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    port = by_id / "usb-shelfsense-mcu-if00"
    before, after = make_block(120, 4, seed=5), make_block(150, 4, seed=6)
    caplog.set_level(logging.WARNING, logger="firmware_bridge.serial_link")
    first = PtyMcu([before]).start()
    _point(port, first.path)
    link = SerialLoadCells(str(port), read_timeout=0.1, backoff_max=0.2)
    try:
        got_before = read_until(link, total(len(before)))
        first.stop()  # unplugged: the pty is gone, the link still points at it
        for _ in range(10):
            assert link.poll() is None
        assert link.stats.disconnects == 1 and not link.connected
        second = PtyMcu([after]).start()
        _point(port, second.path)  # replugged under the same stable name
        try:
            got_after = read_until(link, total(len(after)))
        finally:
            second.stop()
    finally:
        link.close()
    np.testing.assert_array_equal(got_before.counts, before.counts)
    np.testing.assert_array_equal(got_after.counts, after.counts)
    assert link.stats.opens == 2 and link.stats.disconnects == 1
    assert link.stats.open_failures >= 1  # it tried the dead device while unplugged
    assert np.all(np.diff(np.concatenate([got_before.t, got_after.t])) > 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one burst (lost, then failed reopens): one warning


class _Gone:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, port: str, **kwargs: object) -> NoReturn:
        self.calls += 1
        raise FileNotFoundError(2, "No such file or directory", port)


def test_missing_device_backs_off_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    factory = _Gone()
    caplog.set_level(logging.DEBUG, logger="firmware_bridge.serial_link")
    link = SerialLoadCells(
        "/dev/serial/by-id/none", serial_factory=factory, read_timeout=0.05, backoff_max=0.1
    )
    for _ in range(8):
        assert link.poll() is None
    assert factory.calls == link.stats.open_failures >= 2
    assert not link.healthy and link.stats.opens == 0
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1
