"""The MCU protocol in memory: round trips, resynchronisation, counting, and a fuzz."""

from __future__ import annotations

import contextlib
import random
import struct
from binascii import crc_hqx

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.decoder import BlockError, Decoder, frames_to_block
from firmware_bridge.errors import BridgeError
from firmware_bridge.protocol import (
    MAX_CHANNELS,
    MAX_ENCODED,
    ChannelCountError,
    CobsError,
    CountRangeError,
    CrcError,
    Frame,
    FrameError,
    VersionError,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
)
from models.types import ReadingStatus

COUNT = st.integers(-(2**23), 2**23 - 1)
STATUS = st.integers(0, 31)


@st.composite
def frame_args(draw: st.DrawFn) -> tuple[int, int, list[int], list[int]]:
    n = draw(st.integers(1, MAX_CHANNELS))
    counts = draw(st.lists(COUNT, min_size=n, max_size=n))
    status = draw(st.lists(STATUS, min_size=n, max_size=n))
    return draw(st.integers(0, 2**40)), draw(st.integers(0, 2**40)), counts, status


def _payload(version: int, n: int, seq: int, us: int, body: bytes) -> bytes:
    """A payload with a correct CRC, whatever its header says."""
    raw = struct.pack("<BBHI", version, n, seq, us) + body
    return raw + crc_hqx(raw, 0).to_bytes(2, "big")


def _stream(seqs: list[int], n: int = 4, step_us: int = 12_500) -> list[bytes]:
    return [encode_frame(s, i * step_us, [s * 3 - i] * n) for i, s in enumerate(seqs)]


@given(frame_args())
def test_encode_decode_round_trip(args: tuple[int, int, list[int], list[int]]) -> None:
    seq, us, counts, status = args
    wire = encode_frame(seq, us, counts, status)
    assert wire.count(b"\x00") == 1 and wire.endswith(b"\x00")
    frame = decode_frame(wire)
    assert (frame.seq, frame.mcu_us, frame.time_us) == (seq % 65536, us % 2**32, us % 2**32)
    assert (frame.channels, frame.counts, frame.status) == (
        len(counts),
        tuple(counts),
        tuple(status),
    )
    assert frame.statuses() == [ReadingStatus(s) for s in status]


@given(st.binary(max_size=700))
def test_cobs_round_trip_any_bytes(data: bytes) -> None:
    enc = cobs_encode(data)
    assert b"\x00" not in enc
    assert cobs_decode(enc) == data


@given(st.lists(frame_args(), min_size=1, max_size=30), st.lists(st.integers(1, 200), max_size=40))
def test_decoder_same_frames_whatever_the_chunking(
    frames: list[tuple[int, int, list[int], list[int]]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(*f) for f in frames)
    decoder = Decoder(check_time=False)  # framing alone: random seqs and times
    out: list[Frame] = []
    pos = 0
    for cut in cuts:
        out += decoder.feed(stream[pos : pos + cut])
        pos += cut
    out += decoder.feed(stream[pos:])
    assert [(f.counts, f.status) for f in out] == [(tuple(c), tuple(s)) for *_, c, s in frames]
    assert decoder.stats.dropped == 0
    assert decoder.stats.frames == len(frames)


@given(
    st.lists(
        st.tuples(st.binary(max_size=40).map(lambda b: b + b"\x00"), frame_args()),
        min_size=1,
        max_size=12,
    )
)
def test_every_frame_after_a_delimiter_survives_garbage(
    items: list[tuple[bytes, tuple[int, int, list[int], list[int]]]],
) -> None:
    stream = b"".join(junk + encode_frame(*args) for junk, args in items)
    frames = Decoder(check_time=False).feed(stream)
    assert [f.counts for f in frames] == [tuple(args[2]) for _, args in items]


def test_resync_after_garbage_without_delimiter() -> None:
    frames = _stream(list(range(5)))
    decoder = Decoder()
    out = decoder.feed(b"\x01\x02\xffnoise" + b"".join(frames))
    # The garbage swallows the first frame's segment; the rest come through.
    assert [f.seq for f in out] == [1, 2, 3, 4]
    assert decoder.stats.dropped == 1
    assert decoder.stats.frames == 4


def test_resync_after_delimited_garbage_keeps_every_frame() -> None:
    frames = _stream(list(range(4)))
    decoder = Decoder()
    out = decoder.feed(frames[0] + b"\x7fjunk\x00" + b"".join(frames[1:]))
    assert [f.seq for f in out] == [0, 1, 2, 3]
    assert decoder.stats.cobs_errors == 1
    assert decoder.stats.seq_gaps == 0


def test_crc_failure_is_counted_and_frame_dropped() -> None:
    frames = _stream(list(range(4)))
    payload = bytearray(cobs_decode(frames[2][:-1]))
    payload[9] ^= 0x10  # one bit of a count
    frames[2] = cobs_encode(bytes(payload)) + b"\x00"
    decoder = Decoder()
    out = decoder.feed(b"".join(frames))
    assert [f.seq for f in out] == [0, 1, 3]
    assert decoder.stats.crc_errors == 1
    assert decoder.stats.seq_gaps == 1 and decoder.stats.lost_frames == 1
    with pytest.raises(CrcError):
        decode_frame(frames[2])


def test_truncated_frame_is_counted() -> None:
    frames = _stream(list(range(3)))
    cut = frames[1][: len(frames[1]) // 2] + b"\x00"
    decoder = Decoder()
    out = decoder.feed(frames[0] + cut + frames[2])
    assert [f.seq for f in out] == [0, 2]
    assert decoder.stats.malformed == 1
    with pytest.raises(FrameError):
        decode_frame(cut)


def _at(seqs: list[int], ticks: list[int], step_us: int = 12_500) -> bytes:
    """Frames of ``seqs`` sent at ``ticks`` sample periods of the MCU clock."""
    return b"".join(encode_frame(s, k * step_us, [s]) for s, k in zip(seqs, ticks, strict=True))


def test_sequence_gaps_across_the_wrap() -> None:
    decoder = Decoder()
    decoder.feed(_at([65533, 65534, 65535, 0, 1], [0, 1, 2, 3, 4]))
    assert decoder.stats.seq_gaps == 0
    # 1 -> 4 skips two (their time passed too); then the same frame twice
    out = decoder.feed(_at([4, 4, 5], [7, 7, 8]))
    assert [f.seq for f in out] == [4, 5]
    assert (decoder.stats.seq_gaps, decoder.stats.lost_frames) == (1, 2)
    assert decoder.stats.duplicates == 1
    before = decoder.feed(_at([8], [11]))[-1].time_us
    assert (decoder.stats.seq_gaps, decoder.stats.lost_frames) == (2, 4)
    # the MCU reboots: seq and clock start again; time goes on without a jump
    out = decoder.feed(_at([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]))
    assert decoder.stats.seq_restarts == 1 and decoder.stats.time_resyncs == 1
    assert [f.seq for f in out] == [3, 4]  # followed once the new run agrees
    assert [f.time_us - before for f in out] == [4 * 12_500, 5 * 12_500]


def test_mcu_clock_is_unwrapped_only_when_time_fits_the_seq() -> None:
    decoder = Decoder()
    start = 2**32 - 25_000
    out = decoder.feed(b"".join(encode_frame(i, start + i * 12_500, [i]) for i in range(12)))
    assert [f.time_us - out[0].time_us for f in out] == [i * 12_500 for i in range(12)]
    # one frame whose CRC still matches but whose clock is off: dropped, time unmoved
    t11 = out[-1].time_us
    mcu = (start + 11 * 12_500) % 2**32
    for bad in (mcu - 3 * 12_500, mcu + 2**31, mcu + 40 * 12_500):
        got = decoder.feed(encode_frame(12, bad % 2**32, [99]))
        assert got == []
    out = decoder.feed(encode_frame(12, (mcu + 12_500) % 2**32, [12]))
    assert [(f.seq, f.time_us - t11) for f in out] == [(12, 12_500)]
    assert decoder.stats.implausible_time == 3 and decoder.stats.time_resyncs == 0


def test_unknown_version_and_channel_counts_are_counted() -> None:
    decoder = Decoder()
    v2 = encode_frame(0, 0, [1, 2], version=2)
    n17 = cobs_encode(_payload(1, 17, 1, 0, bytes(10))) + b"\x00"
    n0 = cobs_encode(_payload(1, 0, 2, 0, bytes(5))) + b"\x00"
    long = cobs_encode(_payload(1, 1, 3, 0, bytes(6))) + b"\x00"
    out = decoder.feed(v2 + n17 + n0 + long + encode_frame(4, 0, [7]))
    assert [f.counts for f in out] == [(7,)]
    s = decoder.stats
    assert (s.unknown_version, s.bad_channels, s.bad_length) == (1, 2, 1)
    with pytest.raises(VersionError):
        decode_frame(v2)
    with pytest.raises(ChannelCountError):
        decode_frame(cobs_encode(_payload(1, 0, 2, 0, bytes(5))))


def test_count_outside_24_bits_is_refused() -> None:
    body = struct.pack("<iB", 2**23, 0)
    wire = cobs_encode(_payload(1, 1, 0, 0, body)) + b"\x00"
    with pytest.raises(CountRangeError):
        decode_frame(wire)
    decoder = Decoder()
    assert decoder.feed(wire) == []
    assert decoder.stats.out_of_range == 1
    with pytest.raises(CountRangeError):
        encode_frame(0, 0, [2**23])
    with pytest.raises(ChannelCountError):
        encode_frame(0, 0, [0] * 17)


def test_oversize_run_is_dropped_once_then_resyncs() -> None:
    decoder = Decoder()
    junk = bytes(random.Random(3).randrange(1, 256) for _ in range(MAX_ENCODED * 3))
    assert decoder.feed(junk[:100]) == []
    assert decoder.feed(junk[100:]) == []
    out = decoder.feed(b"tail\x00" + b"".join(_stream([9, 10])))
    assert [f.seq for f in out] == [9, 10]
    assert decoder.stats.oversize == 1
    assert decoder.stats.dropped == 1


def test_mcu_clock_is_unwrapped() -> None:
    start = 2**32 - 25_000
    frames = [encode_frame(i, start + i * 12_500, [i]) for i in range(5)]
    out = Decoder().feed(b"".join(frames))
    assert [f.time_us - out[0].time_us for f in out] == [i * 12_500 for i in range(5)]
    assert out[3].mcu_us < out[0].mcu_us  # the raw clock wrapped


def test_frames_to_block() -> None:
    start = 2**32 - 20_000
    frames = Decoder().feed(
        b"".join(
            encode_frame(i, start + i * 12_500, [i, -i, 2**23 - 1], [0, i % 2, 0]) for i in range(6)
        )
    )
    block = frames_to_block(frames)
    assert np.allclose(np.diff(block.t), 0.0125)
    assert block.t[0] == pytest.approx(start * 1e-6)
    assert block.counts.dtype == np.int32
    assert block.counts[:, 1].tolist() == [-i for i in range(6)]
    assert block.valid[:, 1].tolist() == [i % 2 == 0 for i in range(6)]
    assert block.valid[:, [0, 2]].all()
    with pytest.raises(BlockError):
        frames_to_block([])
    with pytest.raises(BlockError):
        frames_to_block([*frames, decode_frame(encode_frame(0, 0, [1]))])


def test_errors_are_bridge_and_value_errors() -> None:
    for cls in (CrcError, CobsError, VersionError, BlockError):
        assert issubclass(cls, BridgeError) and issubclass(cls, ValueError)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_raise_only_documented_errors(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_frame(data)
    decoder = Decoder()
    decoder.feed(data)
    decoder.feed(data)


def _mutate(rng: random.Random, frames: list[bytes]) -> bytes:
    data = bytearray(rng.choice(frames))
    kind = rng.randrange(6)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del data[rng.randrange(len(data)) :]
    elif kind == 2:  # insertion
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = rng.randbytes(rng.randint(1, 8))
    elif kind == 3:  # splice two frames
        other = rng.choice(frames)
        data = data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]
    elif kind == 4:  # random bytes
        data = bytearray(rng.randbytes(rng.randint(0, 120)))
    else:  # byte overwrite (including zeros)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_fuzz_mutated_frames_100k() -> None:
    rng = random.Random(20240611)
    frames = [
        encode_frame(
            rng.randrange(2**16),
            rng.randrange(2**32),
            [rng.randint(-(2**23), 2**23 - 1) for _ in range(n)],
            [rng.randrange(32) for _ in range(n)],
        )
        for n in range(1, MAX_CHANNELS + 1)
        for _ in range(4)
    ]
    decoder = Decoder(check_time=False)  # framing alone: the frames' seqs and times are random
    checker = Decoder(check_time=False)  # one whole segment at a time: agrees with decode_frame
    outcomes: dict[str, int] = {}
    decoded = 0
    for _ in range(100_000):
        data = _mutate(rng, frames)
        try:
            frame: Frame | None = decode_frame(data)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except FrameError as err:
            frame = None
            outcomes[type(err).__name__] = outcomes.get(type(err).__name__, 0) + 1
        decoded += len(decoder.feed(data))
        core = data[:-1] if data.endswith(b"\x00") else data
        if core and b"\x00" not in core:
            got = checker.feed(core + b"\x00")
            assert [(f.seq, f.mcu_us, f.body) for f in got] == (
                [] if frame is None else [(frame.seq, frame.mcu_us, frame.body)]
            )
    # Every class of damage was exercised, and intact frames still get through.
    assert {"ok", "CrcError", "CobsError", "TruncatedFrameError"} <= outcomes.keys()
    assert decoder.stats.crc_errors > 0 and decoder.stats.malformed > 0
    assert decoded == decoder.stats.frames > 0
    after = decoder.feed(b"\x00" + frames[0] + frames[1])
    assert [f.counts for f in after] == [decode_frame(f).counts for f in frames[:2]]
