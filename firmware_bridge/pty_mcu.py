"""A pseudo-terminal that speaks the MCU protocol: the simulator posing as the MCU.

:class:`PtyMcu` opens a pty pair in raw mode, and a thread writes, for every sample
of the given :class:`models.types.ReadingBlock` values, the frame the firmware would
send (see :mod:`firmware_bridge.protocol`). Readers open :attr:`PtyMcu.path` like any
serial device. By default it waits until a reader has the port open before it
starts, so a test sees the whole stream. Faults can be queued for tests: garbage
bytes, a frame with a bad CRC, a truncated frame, a pause.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from firmware_bridge.errors import BridgeError
from firmware_bridge.protocol import DELIMITER, cobs_decode, cobs_encode, encode_frame
from models.types import ReadingBlock, ReadingStatus


class PtyError(BridgeError, OSError):
    """The pseudo-terminal could not be opened or written."""


@dataclass(frozen=True, slots=True)
class SentFrame:
    """What the pty sent for one sample (``intact`` False when a fault damaged it)."""

    seq: int
    mcu_us: int
    counts: tuple[int, ...]
    status: tuple[int, ...]
    intact: bool


class PtyMcu:
    """The MCU on a pseudo-terminal, fed from ReadingBlocks, in a background thread.

    ``realtime`` paces frames at ``sps`` per second and, like the MCU's USB port,
    drops a frame (counted in ``frames_dropped``) when nobody drains the pty;
    otherwise frames go out as fast as the reader takes them (backpressure). Invalid
    samples are sent with status NOT_READY. ``start_seq`` sets the first sequence
    number (to test its wrap). ``wait_for_reader`` holds the stream until a reader
    opens the slave and ``settle_s`` has passed (pyserial flushes input on open).
    ``record`` keeps every written frame in :attr:`sent` (for tests; turn it off
    for long runs).
    """

    def __init__(
        self,
        blocks: Iterable[ReadingBlock],
        *,
        realtime: bool = False,
        sps: int = 80,
        start_seq: int = 0,
        wait_for_reader: bool = True,
        settle_s: float = 0.2,
        leading_delimiter: bool = True,
        record: bool = True,
    ) -> None:
        self._blocks = blocks
        self.realtime = realtime
        self.sps = sps
        self.wait_for_reader = wait_for_reader
        self.settle_s = settle_s
        self.leading_delimiter = leading_delimiter
        self._seq = start_seq & 0xFFFF
        self._faults: deque[tuple[str, object]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.done = threading.Event()
        self.sent: list[SentFrame] = []
        self.record = record
        self.bytes_sent = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        try:
            self._master, slave = os.openpty()
            tty.setraw(slave)
            self.path = os.ttyname(slave)
        except OSError as err:
            raise PtyError(f"cannot open a pseudo-terminal: {err}") from err
        # Close our slave end: the master then sees POLLHUP until a reader opens it.
        os.close(slave)
        os.set_blocking(self._master, False)

    # -------------------------------------------------------------- faults

    def inject_garbage(self, data: bytes) -> None:
        """Write ``data`` as is before the next frame."""
        self._add_fault("garbage", bytes(data))

    def inject_bad_crc(self, count: int = 1) -> None:
        """Send the next ``count`` frames with one CRC bit flipped."""
        for _ in range(count):
            self._add_fault("bad_crc", None)

    def inject_truncated(self, count: int = 1) -> None:
        """Send the next ``count`` frames cut short (then their delimiter)."""
        for _ in range(count):
            self._add_fault("truncated", None)

    def inject_pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` before the next frame."""
        self._add_fault("pause", float(seconds))

    def _add_fault(self, kind: str, arg: object) -> None:
        with self._lock:
            self._faults.append((kind, arg))

    # -------------------------------------------------------------- thread

    def start(self) -> PtyMcu:
        """Start writing in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pty-mcu", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop writing and close the pty (a reader then sees the device vanish)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def wait_done(self, timeout: float | None = None) -> bool:
        """Block until every block has been sent (or the thread ended); True if it did."""
        return self.done.wait(timeout)

    def __enter__(self) -> PtyMcu:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            if self.wait_for_reader and not self._await_reader():
                return
            if self.leading_delimiter:
                self._write(DELIMITER)
            period = 1.0 / self.sps
            next_at = time.monotonic()
            for counts, status, mcu_us in self._samples():
                if self._stop.is_set():
                    return
                self._apply_faults()
                if self.realtime:
                    delay = next_at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    next_at = max(next_at + period, time.monotonic() - period)
                self._send(counts, status, mcu_us)
        except (OSError, ValueError) as err:
            if not self._stop.is_set():
                self.error = err
        finally:
            self.done.set()

    def _samples(self) -> Iterator[tuple[list[int], list[int], int]]:
        not_ready = int(ReadingStatus.NOT_READY)
        for block in self._blocks:
            us = np.rint(block.t * 1e6).astype(np.int64) % (1 << 32)
            status = np.where(block.valid, 0, not_ready).astype(np.int64)
            counts = block.counts.tolist()
            for i, st in enumerate(status.tolist()):
                yield counts[i], st, int(us[i])

    def _await_reader(self) -> bool:
        poller = select.poll()
        poller.register(self._master, select.POLLHUP)
        while not self._stop.is_set():
            events = poller.poll(50)
            if not any(ev & select.POLLHUP for _, ev in events):
                return not self._stop.wait(self.settle_s)
        return False

    def _apply_faults(self) -> None:
        while True:
            with self._lock:
                if not self._faults or self._faults[0][0] in ("bad_crc", "truncated"):
                    return
                kind, arg = self._faults.popleft()
            if kind == "garbage":
                assert isinstance(arg, bytes)
                self._write(arg)
            elif kind == "pause" and isinstance(arg, float):
                self._stop.wait(arg)

    def _send(self, counts: list[int], status: list[int], mcu_us: int) -> None:
        fault = ""
        with self._lock:
            if self._faults and self._faults[0][0] in ("bad_crc", "truncated"):
                fault = self._faults.popleft()[0]
        frame = encode_frame(self._seq, mcu_us, counts, status)
        if fault == "bad_crc":
            payload = bytearray(cobs_decode(frame[:-1]))
            payload[-1] ^= 0x01  # one bit of the CRC
            frame = cobs_encode(bytes(payload)) + DELIMITER
        elif fault == "truncated":
            frame = frame[: len(frame) // 2] + DELIMITER
        if self.realtime and not select.select([], [self._master], [], 0)[1]:
            self.frames_dropped += 1  # the buffer is full: the frame is lost, seq moves on
        else:
            if self.record:  # before the write: a reader never holds a frame not yet listed
                sent = SentFrame(self._seq, mcu_us, tuple(counts), tuple(status), not fault)
                self.sent.append(sent)
            self._write(frame)
            self.frames_sent += 1
        self._seq = (self._seq + 1) & 0xFFFF

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                return
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
                continue
            view = view[n:]
            self.bytes_sent += n
