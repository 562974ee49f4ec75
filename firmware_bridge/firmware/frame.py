"""Frame building for the shelfsense MCU (MicroPython; also runs under CPython).

Pure: no I/O, no hardware. ``Framer.frame(counts, status, mcu_us)`` returns the bytes
to write to USB CDC for one sample instant: the payload below, COBS-encoded, then
one 0x00 delimiter. The layout is the host's ``firmware_bridge/protocol.py``
(protocol version 1; see README.md in this folder):

    u8 version=1 | u8 channels N | u16 seq (LE, wraps) | u32 mcu_us (LE, wraps)
    | N x i32 counts (LE, 24-bit sign-extended) | N x u8 status | u16 CRC (BIG-endian)

CRC-16/XMODEM (poly 0x1021, init 0) over everything before it, table-driven.
"""

import struct

try:  # MicroPython: compile the hot loops to native code
    import micropython

    _native = micropython.native
except (ImportError, AttributeError):  # CPython (tests), or a port without native

    def _native(f):
        return f


VERSION = 1
MAX_CHANNELS = 16
COUNT_MIN = -(1 << 23)
COUNT_MAX = (1 << 23) - 1


def _make_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


CRC_TABLE = _make_table()


@_native
def crc16(data, crc=0):
    """CRC-16/XMODEM of ``data`` (equals CPython's ``binascii.crc_hqx(data, crc)``)."""
    table = CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


@_native
def cobs_encode(data):
    """COBS-encode ``data`` (no zero byte in the result; no delimiter appended)."""
    out = bytearray(len(data) + len(data) // 254 + 2)
    code_pos = 0
    code = 1
    o = 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos = o
            o += 1
            code = 1
        else:
            out[o] = b
            o += 1
            code += 1
            if code == 255:
                out[code_pos] = code
                code_pos = o
                o += 1
                code = 1
    out[code_pos] = code
    return bytes(out[:o])


def clamp24(value):
    """``value`` limited to the HX711's 24-bit signed range."""
    if value < COUNT_MIN:
        return COUNT_MIN
    if value > COUNT_MAX:
        return COUNT_MAX
    return value


class Framer:
    """Builds consecutive frames for a fixed number of channels; owns the sequence number."""

    def __init__(self, channels, seq=0):
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError("channels must be 1..16")
        self.channels = channels
        self.seq = seq & 0xFFFF
        self._fmt = "<BBHI" + "i" * channels + "B" * channels
        self._buf = bytearray(8 + 5 * channels + 2)

    def payload(self, counts, status, mcu_us):
        """The un-encoded payload for one sample instant, CRC included; advances seq."""
        n = self.channels
        buf = self._buf
        struct.pack_into(
            self._fmt, buf, 0, VERSION, n, self.seq, mcu_us & 0xFFFFFFFF, *(counts + status)
        )
        crc = crc16(memoryview(buf)[: 8 + 5 * n])
        buf[8 + 5 * n] = crc >> 8
        buf[9 + 5 * n] = crc & 0xFF
        self.seq = (self.seq + 1) & 0xFFFF
        return bytes(buf)

    def frame(self, counts, status, mcu_us):
        """The wire bytes for one sample instant: COBS(payload) followed by 0x00."""
        return cobs_encode(self.payload(counts, status, mcu_us)) + b"\x00"
