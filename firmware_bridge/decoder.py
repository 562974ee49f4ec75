"""Stream decoding of the MCU protocol: bytes of a serial port in, frames and blocks out.

:class:`Decoder` turns a byte stream into :class:`firmware_bridge.protocol.Frame`s,
dropping and counting whatever is damaged (:class:`DecoderStats`), so a serial reader
can feed it anything; :func:`frames_to_block` turns a run of frames into the
:class:`models.types.ReadingBlock` the signal path consumes. Pure: no I/O.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from firmware_bridge.errors import BridgeError
from firmware_bridge.protocol import (
    _SIGN,
    HEADER,
    MAX_CHANNELS,
    MAX_ENCODED,
    US_MOD,
    VERSION,
    ChannelCountError,
    CobsError,
    CountRangeError,
    CrcError,
    Frame,
    FrameError,
    FrameLengthError,
    TruncatedFrameError,
    VersionError,
    decode_frame,
    parse_payload,
)
from firmware_bridge.timecheck import ClockStats, StreamClock
from models.types import ReadingBlock


@dataclass(slots=True)
class DecoderStats(ClockStats):
    """What a :class:`Decoder` saw: good frames, every kind of damage, sequence gaps.

    The sequence and time counters are :class:`~firmware_bridge.timecheck.ClockStats`.
    """

    frames: int = 0
    bytes: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    truncated: int = 0
    bad_length: int = 0
    unknown_version: int = 0
    bad_channels: int = 0
    out_of_range: int = 0
    oversize: int = 0

    @property
    def malformed(self) -> int:
        """Frames dropped for any reason other than a CRC mismatch."""
        return (
            self.cobs_errors
            + self.truncated
            + self.bad_length
            + self.unknown_version
            + self.bad_channels
            + self.out_of_range
            + self.oversize
        )

    @property
    def dropped(self) -> int:
        """Every segment dropped for damage (CRC failures plus malformed)."""
        return self.crc_errors + self.malformed

    def as_dict(self) -> dict[str, int]:
        """All counters by name, including the derived totals."""
        out = {f.name: int(getattr(self, f.name)) for f in fields(self)}
        out["malformed"] = self.malformed
        out["dropped"] = self.dropped
        return out


_ERROR_FIELD: dict[type[FrameError], str] = {
    CrcError: "crc_errors",
    CobsError: "cobs_errors",
    TruncatedFrameError: "truncated",
    FrameLengthError: "bad_length",
    VersionError: "unknown_version",
    ChannelCountError: "bad_channels",
    CountRangeError: "out_of_range",
}


class Decoder:
    """Stateful stream decoder: ``feed(bytes) -> list[Frame]``; never raises on garbage.

    Keeps the partial segment between calls, drops and counts damaged segments
    in :attr:`stats`, and unwraps the MCU's u32 microsecond clock into
    :attr:`Frame.time_us` through a :class:`~firmware_bridge.timecheck.StreamClock`,
    which also drops (and counts) frames whose time step does not fit their seq
    step, and counts sequence gaps (modulo 2**16). ``check_time=False`` takes every
    frame as it comes (for tests of framing alone). :meth:`restart` begins a new
    stream (after a reconnect) but keeps the counters.
    """

    def __init__(self, *, check_time: bool = True) -> None:
        self.stats = DecoderStats()
        self.clock = StreamClock(self.stats, check=check_time)
        self._buf = b""
        self._skipping = False

    def restart(self) -> None:
        """Forget the partial segment and the stream: a new connection begins."""
        self._buf = b""
        self._skipping = False
        self.clock.restart()

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data`` (in order); damage is counted, never raised."""
        stats = self.stats
        stats.bytes += len(data)
        parts = (self._buf + data).split(b"\x00") if self._buf else bytes(data).split(b"\x00")
        tail = parts.pop()
        if self._skipping and parts:
            parts[0] = b""  # the rest of an oversize segment, already counted
            self._skipping = False
        if len(tail) > MAX_ENCODED:
            if not self._skipping:
                stats.oversize += 1
                self._skipping = True
            tail = b""
        self._buf = tail
        out: list[Frame] = []
        append = out.append
        new = tuple.__new__
        crc = crc_hqx
        header = HEADER.unpack_from
        sign = _SIGN
        clock = self.clock.step
        for seg in parts:
            size = len(seg)
            if size == 0:
                continue
            # Fast path: a well-formed frame of N channels is 11 + 5N encoded bytes.
            n = seg[2] if size > 2 else 0
            if size == 11 + 5 * n and 1 <= n <= MAX_CHANNELS:
                # COBS inline (a segment has no zero; 0xFF codes cannot fit in 91 bytes)
                buf = bytearray(seg)
                pos = 0
                while pos < size:
                    code = buf[pos]
                    buf[pos] = 0
                    pos += code
                if pos != size:
                    stats.cobs_errors += 1
                    continue
                del buf[0]
                if crc(buf, 0):
                    stats.crc_errors += 1
                    continue
                version, n2, seq, mcu_us = header(buf)
                end = 8 + 4 * n
                if version != VERSION or n2 != n:
                    self._count_error(bytes(buf))
                    continue
                if buf[10:end:4].translate(sign) != buf[11:end:4]:
                    stats.out_of_range += 1
                    continue
                body = bytes(buf[8:-2])
            else:
                try:
                    frame = decode_frame(seg)
                except FrameError as err:
                    self._bump(err)
                    continue
                seq, mcu_us, n, body = frame.seq, frame.mcu_us, frame.channels, frame.body
            time_us = clock(seq, mcu_us)
            if time_us is not None:
                append(new(Frame, (seq, mcu_us, time_us, n, body)))
        stats.frames += len(out)
        return out

    def _bump(self, err: FrameError) -> None:
        """Count one dropped segment under the counter of its error class."""
        name = _ERROR_FIELD[type(err)]
        setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _count_error(self, payload: bytes) -> None:
        """Count a CRC-clean payload whose header the fast path refused."""
        try:
            parse_payload(payload)
        except FrameError as err:
            self._bump(err)
        else:  # pragma: no cover - the fast path refuses only what parse_payload refuses
            self.stats.bad_length += 1


# ---------------------------------------------------------------- blocks


class BlockError(BridgeError, ValueError):
    """Frames that cannot form one block (none, or differing channel counts)."""


def frames_to_block(frames: Sequence[Frame], *, t0_us: int | None = None) -> ReadingBlock:
    """Frames of one stream as one :class:`ReadingBlock`.

    ``t`` is seconds of the MCU clock: the first frame's ``time_us`` (minus ``t0_us``
    when given) plus the differences of ``time_us`` between frames (as a
    :class:`Decoder` unwrapped and checked them; a negative difference, from frames
    decoded one by one, is taken modulo 2**32).
    ``valid`` is ``status == 0``. All frames must have the same channel count.
    """
    if not frames:
        raise BlockError("no frames")
    n = frames[0].channels
    if any(f.channels != n for f in frames):
        raise BlockError("frames with different channel counts cannot form one block")
    us = np.fromiter((f.time_us for f in frames), dtype=np.int64, count=len(frames))
    steps = np.diff(us)
    steps[steps < 0] %= US_MOD
    t_us = np.empty(len(frames), dtype=np.int64)
    t_us[0] = frames[0].time_us - (t0_us or 0)
    np.cumsum(steps, out=t_us[1:])
    t_us[1:] += t_us[0]
    raw = np.frombuffer(b"".join([f.body for f in frames]), dtype=np.uint8)
    raw = raw.reshape(len(frames), 5 * n)
    counts = np.ascontiguousarray(raw[:, : 4 * n]).view("<i4").astype(np.int32, copy=False)
    return ReadingBlock(t=t_us.astype(np.float64) * 1e-6, counts=counts, valid=raw[:, 4 * n :] == 0)
