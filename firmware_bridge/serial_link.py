"""Load cells behind a microcontroller on a serial port: bytes in, ReadingBlocks out.

:class:`SerialLoadCells` opens the port with pyserial (through an injectable
factory), reads with a timeout so a silent port never blocks for long, feeds a
:class:`firmware_bridge.decoder.Decoder` and hands out
:class:`models.types.ReadingBlock` values, one per read (:meth:`poll`) or of a fixed
duration (:meth:`blocks`). When the device vanishes (unplugged, USB reset) it closes,
counts a disconnect and reopens the same path with backoff, so a udev
``/dev/serial/by-id/…`` link that comes back on replug just works. Errors are logged
once per burst, not per frame.

Frames whose MCU time does not fit their seq step are dropped by the decoder
(:mod:`firmware_bridge.timecheck`); a burst of them is logged once. Frames the MCU
sent while the port was away are counted (``reconnect_lost_frames``, exact when
the MCU's seq and time agree on it, else estimated from the host clock).
:meth:`SerialLoadCells.link_health` says whether the link delivers
(:mod:`firmware_bridge.link_health`): ``unplugged``, ``silent``, ``damaged`` or ``ok``.

Times: by default (``timebase="host"``) block times are the MCU's microsecond clock
anchored to the host clock at the first frame of each connection, and never go
backwards across a reconnect; ``timebase="mcu"`` keeps the MCU's own seconds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from firmware_bridge.decoder import Decoder, DecoderStats, frames_to_block
from firmware_bridge.link_health import LinkHealth, RecentCounts, judge_link
from firmware_bridge.protocol import Frame
from models.types import ReadingBlock

log = logging.getLogger(__name__)


class SerialPort(Protocol):
    """What the link needs of a pyserial ``Serial``."""

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read without blocking."""
        ...

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes; blocks at most the port's timeout."""
        ...

    def close(self) -> None:
        """Release the port."""
        ...


SerialFactory = Callable[..., SerialPort]
"""Called as ``factory(port, baudrate=…, timeout=…)``; raises OSError when it cannot open."""


def pyserial_factory(port: str, *, baudrate: int, timeout: float) -> SerialPort:
    """Open ``port`` (a device path or a pyserial URL) with pyserial."""
    import serial  # the edge extra; imported here so the protocol works without it

    port_obj: Any = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout)
    return port_obj


@dataclass(slots=True)
class LinkStats:
    """Connection history of a :class:`SerialLoadCells`, plus its decoder's counters."""

    opens: int = 0
    open_failures: int = 0
    disconnects: int = 0
    reads: int = 0
    blocks: int = 0
    reconnect_lost_estimated: int = 0
    last_error: str = ""
    decoder: DecoderStats = field(default_factory=DecoderStats)

    @property
    def frames(self) -> int:
        """Good frames decoded over every connection."""
        return self.decoder.frames


class _Burst:
    """Logs the first error of a burst as a warning and the rest only as a count."""

    def __init__(self, what: str, quiet_s: float) -> None:
        self.what = what
        self.quiet_s = quiet_s
        self.count = 0
        self.last = 0.0

    def error(self, now: float, message: str, *args: object) -> None:
        if self.count == 0:
            log.warning(message, *args)
        else:
            log.debug(message, *args)
        self.count += 1
        self.last = now

    def clear(self, now: float, *, force: bool = False) -> None:
        if self.count and (force or now - self.last >= self.quiet_s):
            log.info("%s: recovered after %d error(s)", self.what, self.count)
            self.count = 0


class SerialLoadCells:
    """Raw counts from an MCU on a serial port, as :class:`ReadingBlock` values.

    ``serial_factory`` defaults to pyserial; ``clock`` (monotonic seconds) to
    :func:`time.monotonic`. Never raises on a bad or missing device: it retries with
    a backoff from ``backoff_min`` doubling to ``backoff_max``. ``healthy`` says a
    frame arrived within ``stale_after`` seconds.
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = 921600,
        read_timeout: float = 0.5,
        serial_factory: SerialFactory | None = None,
        clock: Callable[[], float] | None = None,
        timebase: Literal["host", "mcu"] = "host",
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        stale_after: float = 2.0,
    ) -> None:
        self.port = port
        self.baud = baud
        self.read_timeout = read_timeout
        self._factory: SerialFactory = serial_factory or pyserial_factory
        self._clock = clock or time.monotonic
        self.timebase = timebase
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.stale_after = stale_after
        self._decoder = Decoder()
        self.stats = LinkStats(decoder=self._decoder.stats)
        self._ser: SerialPort | None = None
        self._backoff = backoff_min
        self._next_open = float("-inf")
        self._closed = threading.Event()
        self._queue: deque[ReadingBlock] = deque()
        self._offset: float | None = None
        self._last_t = float("-inf")
        self._last_frame_at = float("-inf")
        self._dropped_seen = 0
        self._implausible_seen = 0
        self._unknown_seen = 0
        self._period_s: float | None = None
        self._recent = RecentCounts()
        self._link_burst = _Burst(f"serial {port}", quiet_s=0.0)
        self._data_burst = _Burst(f"frames on {port}", quiet_s=5.0)
        self._time_burst = _Burst(f"frame times on {port}", quiet_s=5.0)

    # -------------------------------------------------------------- public

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self._ser is not None

    @property
    def healthy(self) -> bool:
        """True when connected and a good frame arrived within ``stale_after`` seconds."""
        return self.connected and self._clock() - self._last_frame_at <= self.stale_after

    def link_health(self) -> LinkHealth:
        """Whether the link delivers now: ``ok``, ``unplugged``, ``silent`` or ``damaged``."""
        now = self._clock()
        self._recent.expire(now)
        return judge_link(
            connected=self.connected,
            since_frame_s=now - self._last_frame_at,
            good=self._recent.good,
            damaged=self._recent.damaged,
            stale_after=self.stale_after,
        )

    def poll(self) -> ReadingBlock | None:
        """One read (at most ~``read_timeout``): the samples that arrived, or None."""
        if not self._queue:
            self._read()
        return self._queue.popleft() if self._queue else None

    def blocks(
        self, block_s: float, *, until: Callable[[], bool] | None = None
    ) -> Iterator[ReadingBlock]:
        """Blocks spanning ``block_s`` seconds of samples, until :meth:`close` or ``until()``.

        A block is cut early when the channel count changes or the link drops. A
        silent port yields nothing, but the loop checks ``until`` after every read.
        """
        pending: list[ReadingBlock] = []
        while not self._closed.is_set() and not (until is not None and until()):
            opens = self.stats.opens
            chunk = self.poll()
            if pending and (self.stats.opens != opens or not self.connected):
                yield _concat(pending)  # the connection ended: flush what it gave
                pending = []
            if chunk is None:
                continue
            if pending and pending[0].channels != chunk.channels:
                yield _concat(pending)
                pending = []
            pending.append(chunk)
            t0 = pending[0].t[0]
            while pending and pending[-1].t[-1] - t0 >= block_s:
                whole = _concat(pending)
                cut = int(np.searchsorted(whole.t, t0 + block_s, side="left"))
                cut = max(cut, 1)
                yield _slice(whole, 0, cut)
                pending = [_slice(whole, cut, len(whole))] if cut < len(whole) else []
                if pending:
                    t0 = pending[0].t[0]

    def close(self) -> None:
        """Close the port and end :meth:`blocks`."""
        self._closed.set()
        self._drop_port()

    def __enter__(self) -> SerialLoadCells:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- I/O shell

    def _read(self) -> None:
        if self._ser is None and not self._open():
            return
        ser = self._ser
        assert ser is not None
        try:
            waiting = ser.in_waiting
            data = ser.read(waiting or 1)
            if data and not waiting:
                more = ser.in_waiting
                if more:
                    data += ser.read(more)
        except OSError as err:  # SerialException is an OSError
            self._lost(err)
            return
        self.stats.reads += 1
        if not data:
            return
        st = self._decoder.stats
        before = (st.dropped, st.implausible_time)
        frames = self._decoder.feed(data)
        now = self._clock()
        self._recent.add(now, len(frames), st.dropped - before[0] + st.implausible_time - before[1])
        if st.dropped != self._dropped_seen:
            self._data_burst.error(
                now,
                "damaged frames on %s (crc errors %d, malformed %d so far); dropped",
                self.port,
                st.crc_errors,
                st.malformed,
            )
            self._dropped_seen = st.dropped
        elif frames:
            self._data_burst.clear(now)
        if st.implausible_time != self._implausible_seen:
            self._time_burst.error(
                now,
                "frames on %s whose time does not fit their seq (%d so far); dropped, "
                "nothing is decided from them",
                self.port,
                st.implausible_time,
            )
            self._implausible_seen = st.implausible_time
        elif frames:
            self._time_burst.clear(now)
        if frames:
            self._count_unknown_loss(now)
            self._last_frame_at = now
            if self._decoder.clock.period_us is not None:
                self._period_s = self._decoder.clock.period_us * 1e-6
            self._link_burst.clear(now, force=True)
            self._enqueue(frames, now)

    def _count_unknown_loss(self, now: float) -> None:
        """After a reconnect the MCU's frames could not tell the loss: estimate it by host time."""
        unknown = self._decoder.stats.reconnect_unknown
        if unknown == self._unknown_seen:
            return
        self._unknown_seen = unknown
        gap = now - self._last_frame_at
        if self._period_s and gap != float("inf"):
            lost = max(0, round(gap / self._period_s) - 1)
            self.stats.reconnect_lost_estimated += lost
            log.info("%s: about %d frames lost while the port was away", self.port, lost)

    def _open(self) -> bool:
        now = self._clock()
        if self._closed.is_set():
            return False
        if now < self._next_open:
            self._closed.wait(min(self._next_open - now, self.read_timeout))
            if self._clock() < self._next_open:
                return False
        try:
            self._ser = self._factory(self.port, baudrate=self.baud, timeout=self.read_timeout)
        except (OSError, ValueError) as err:  # ValueError: pyserial's bad settings / URL
            self.stats.open_failures += 1
            self.stats.last_error = f"open: {err}"
            self._link_burst.error(
                now,
                "cannot open %s (%s); retrying every <= %.1f s",
                self.port,
                err,
                self.backoff_max,
            )
            self._next_open = now + self._backoff
            self._backoff = min(self._backoff * 2, self.backoff_max)
            return False
        self.stats.opens += 1
        self._backoff = self.backoff_min
        self._decoder.restart()
        self._offset = None
        log.info("opened %s", self.port)
        return True

    def _lost(self, err: OSError) -> None:
        if self._closed.is_set():  # close() from another thread ended the read
            self._drop_port()
            return
        now = self._clock()
        self.stats.disconnects += 1
        self.stats.last_error = f"read: {err}"
        self._link_burst.error(now, "lost %s (%s); reconnecting", self.port, err)
        self._drop_port()
        self._next_open = now + self._backoff

    def _drop_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(OSError):
                ser.close()

    # -------------------------------------------------------------- frames to blocks

    def _enqueue(self, frames: list[Frame], now: float) -> None:
        start = 0
        for i in range(1, len(frames) + 1):
            if i == len(frames) or frames[i].channels != frames[start].channels:
                self._queue.append(self._block(frames[start:i], now))
                start = i

    def _block(self, frames: list[Frame], now: float) -> ReadingBlock:
        block = frames_to_block(frames)
        if self.timebase == "host":
            if self._offset is None:
                first = float(block.t[0])
                offset = now - first
                if first + offset <= self._last_t:  # keep host time monotonic
                    offset = self._last_t + 1e-6 - first
                self._offset = offset
            block.t[:] += self._offset
        self._last_t = float(block.t[-1])
        self.stats.blocks += 1
        return block


def _concat(blocks: list[ReadingBlock]) -> ReadingBlock:
    if len(blocks) == 1:
        return blocks[0]
    return ReadingBlock(
        t=np.concatenate([b.t for b in blocks]),
        counts=np.concatenate([b.counts for b in blocks]),
        valid=np.concatenate([b.valid for b in blocks]),
    )


def _slice(block: ReadingBlock, start: int, stop: int) -> ReadingBlock:
    return ReadingBlock(
        t=block.t[start:stop], counts=block.counts[start:stop], valid=block.valid[start:stop]
    )
