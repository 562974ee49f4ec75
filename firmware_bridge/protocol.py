"""The MCU serial protocol, host side: pure bytes in, frames out (no I/O).

A microcontroller reading up to 16 HX711 channels sends one frame per sample instant.
:func:`encode_frame` builds one (the simulator and tests use it; the firmware has its
own copy in ``firmware/frame.py``), :func:`decode_frame` checks and parses one, and
the stream decoder in :mod:`firmware_bridge.decoder` turns a byte stream into frames.

Byte layout, protocol version 1 (all multi-byte fields little-endian, except the CRC)::

    offset      size  field
    0           1     version            u8, = 1
    1           1     channels N         u8, 1..16
    2           2     seq                u16, +1 per frame, wraps 65535 -> 0
    4           4     mcu_us             u32, MCU microsecond clock, wraps after 2**32
    8           4*N   counts             i32 each: the HX711's 24-bit two's-complement
                                         value, sign-extended (-2**23 .. 2**23-1)
    8+4N        N     status             u8 each: models.types.ReadingStatus bits
    8+5N        2     crc                u16 BIG-endian: CRC-16/XMODEM (poly 0x1021,
                                         init 0, no reflection, = binascii.crc_hqx(x, 0))
                                         over bytes 0 .. 8+5N-1

The payload (10 + 5N bytes, at most 90) is COBS-encoded and followed by one 0x00
delimiter. The encoded frame never holds 0x00, so a reader resynchronises at the next
delimiter after any garbage; empty segments (back-to-back delimiters) are idle filler.
Since the payload is shorter than 254 bytes, COBS adds exactly one byte. With the CRC
stored big-endian, ``crc_hqx(payload, 0) == 0`` for every intact payload.

Checks, in order (the first that fails names the error and the counter in
:class:`firmware_bridge.decoder.DecoderStats`): valid COBS; payload length possible at all; for version 1
with N in 1..16, length equal to 10 + 5N (truncated / bad length); CRC; version;
channel count; every count within 24 bits.
"""

from __future__ import annotations

import struct
from binascii import crc_hqx
from collections.abc import Sequence
from typing import NamedTuple

from firmware_bridge.errors import BridgeError
from models.types import ReadingStatus

VERSION = 1
MAX_CHANNELS = 16
HEADER = struct.Struct("<BBHI")
HEADER_SIZE = HEADER.size
CRC_SIZE = 2
MIN_PAYLOAD = HEADER_SIZE + 5 + CRC_SIZE
MAX_PAYLOAD = HEADER_SIZE + 5 * MAX_CHANNELS + CRC_SIZE
MAX_ENCODED = MAX_PAYLOAD + 1  # COBS overhead for payloads < 254 bytes
DELIMITER = b"\x00"
SEQ_MOD = 1 << 16
US_MOD = 1 << 32
COUNT_MIN = -(1 << 23)
COUNT_MAX = (1 << 23) - 1

_FULL = [struct.Struct(f"<BBHI{n}i{n}B") for n in range(MAX_CHANNELS + 1)]
_COUNTS = [struct.Struct(f"<{n}i") for n in range(MAX_CHANNELS + 1)]
# byte 2 of a sign-extended 24-bit i32 -> the byte 3 it must have (0x00 or 0xFF)
_SIGN = bytes(0xFF if b & 0x80 else 0 for b in range(256))


class FrameError(BridgeError, ValueError):
    """A frame that cannot be used; :func:`decode_frame` raises only subclasses of this."""


class CobsError(FrameError):
    """The bytes are not valid COBS (a zero byte, or a code pointing past the end)."""


class TruncatedFrameError(FrameError):
    """The payload is shorter than its header says (or than any frame can be)."""


class FrameLengthError(FrameError):
    """The payload is longer than its header says, or longer than any frame can be."""


class CrcError(FrameError):
    """The CRC-16 does not match: the bytes were damaged on the way."""


class VersionError(FrameError):
    """A protocol version this host does not speak."""


class ChannelCountError(FrameError):
    """A channel count outside 1..16."""


class CountRangeError(FrameError):
    """A count outside the 24-bit signed range of an HX711."""


class Frame(NamedTuple):
    """One sample instant of every channel, as the MCU sent it.

    ``mcu_us`` is the raw u32 timestamp; ``time_us`` is the same clock unwrapped by
    :class:`Decoder` (it equals ``mcu_us`` for a frame decoded on its own). ``body``
    keeps the wire bytes of the counts and statuses: :attr:`counts` and
    :attr:`status` unpack them on demand, :func:`frames_to_block` in bulk.
    """

    seq: int
    mcu_us: int
    time_us: int
    channels: int
    body: bytes

    @property
    def counts(self) -> tuple[int, ...]:
        """One signed 24-bit count per channel."""
        return _COUNTS[self.channels].unpack_from(self.body)

    @property
    def status(self) -> tuple[int, ...]:
        """One status byte (ReadingStatus bits) per channel."""
        return tuple(self.body[4 * self.channels :])

    def statuses(self) -> list[ReadingStatus]:
        """The status bytes as :class:`ReadingStatus` flags."""
        return [ReadingStatus(s) for s in self.status]


# ---------------------------------------------------------------- COBS


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (any length); the result holds no zero byte."""
    out = bytearray()
    for chunk in data.split(b"\x00"):
        while len(chunk) >= 254:
            out.append(255)
            out += chunk[:254]
            chunk = chunk[254:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Undo :func:`cobs_encode`; raises :class:`CobsError` on bytes no encoder makes.

    (:meth:`Decoder.feed` has its own inlined copy for frame-sized segments.)
    """
    if not data:
        raise CobsError("empty COBS block")
    if 0 in data:
        raise CobsError("zero byte inside a COBS frame")
    out = bytearray()
    pos = 0
    n = len(data)
    while pos < n:
        code = data[pos]
        end = pos + code
        if end > n:
            raise CobsError("COBS code points past the end of the frame")
        out += data[pos + 1 : end]
        pos = end
        if code != 255 and pos < n:
            out.append(0)
    return bytes(out)


# ---------------------------------------------------------------- frames


def encode_frame(
    seq: int,
    mcu_us: int,
    counts: Sequence[int],
    status: Sequence[int] | None = None,
    *,
    version: int = VERSION,
) -> bytes:
    """One wire frame (COBS payload plus the 0x00 delimiter) for one sample instant.

    ``seq`` and ``mcu_us`` are reduced modulo their field size, as the MCU's
    counters wrap. ``status`` defaults to all OK. Raises :class:`ChannelCountError`
    or :class:`CountRangeError` for values the protocol cannot carry.
    """
    n = len(counts)
    if not 1 <= n <= MAX_CHANNELS:
        raise ChannelCountError(f"channel count {n} outside 1..{MAX_CHANNELS}")
    st = [0] * n if status is None else [int(s) for s in status]
    if len(st) != n:
        raise ChannelCountError(f"{len(st)} statuses for {n} channels")
    cs = [int(c) for c in counts]
    if min(cs) < COUNT_MIN or max(cs) > COUNT_MAX:
        raise CountRangeError(f"counts outside the 24-bit range: {min(cs)}..{max(cs)}")
    if min(st) < 0 or max(st) > 255:
        raise FrameError("status bytes must be 0..255")
    body = _FULL[n].pack(version & 0xFF, n, seq % SEQ_MOD, mcu_us % US_MOD, *cs, *st)
    payload = body + crc_hqx(body, 0).to_bytes(2, "big")
    return cobs_encode(payload) + DELIMITER


def parse_payload(payload: bytes) -> Frame:
    """Check and parse one decoded (un-COBSed) payload into a :class:`Frame`."""
    size = len(payload)
    if size < MIN_PAYLOAD:
        raise TruncatedFrameError(f"payload of {size} bytes is shorter than any frame")
    if size > MAX_PAYLOAD:
        raise FrameLengthError(f"payload of {size} bytes is longer than any frame")
    n = payload[1]
    if payload[0] == VERSION and 1 <= n <= MAX_CHANNELS:  # length disagrees with header
        want = HEADER_SIZE + 5 * n + CRC_SIZE
        if size < want:
            raise TruncatedFrameError(f"{n} channels need {want} bytes, got {size}")
        if size > want:
            raise FrameLengthError(f"{n} channels need {want} bytes, got {size}")
    if crc_hqx(payload, 0):
        raise CrcError("CRC-16 mismatch")
    version, n, seq, mcu_us = HEADER.unpack_from(payload)
    if version != VERSION:
        raise VersionError(f"protocol version {version}, expected {VERSION}")
    if not 1 <= n <= MAX_CHANNELS:
        raise ChannelCountError(f"channel count {n} outside 1..{MAX_CHANNELS}")
    end = HEADER_SIZE + 4 * n
    if payload[10:end:4].translate(_SIGN) != payload[11:end:4]:
        raise CountRangeError("count outside the 24-bit range")
    return Frame(seq, mcu_us, mcu_us, n, payload[HEADER_SIZE:-CRC_SIZE])


def decode_frame(data: bytes) -> Frame:
    """Decode one COBS frame (with or without its trailing delimiter).

    Raises only :class:`FrameError` subclasses, whatever the bytes.
    """
    if data.endswith(DELIMITER):
        data = data[:-1]
    if len(data) > MAX_ENCODED:
        raise FrameLengthError(f"{len(data)} encoded bytes is longer than any frame")
    return parse_payload(cobs_decode(bytes(data)))
