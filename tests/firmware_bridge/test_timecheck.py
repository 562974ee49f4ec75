"""Time plausibility: a frame whose CRC still matches but whose clock lies moves no time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.decoder import Decoder
from firmware_bridge.protocol import encode_frame
from firmware_bridge.timecheck import RESYNC_FRAMES, StreamClock


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], int, int]:
    """Frames ``(seq, mcu_us, true offset µs)`` of a steady MCU, some lost; one to corrupt."""
    period = draw(st.sampled_from([12_500, 100_000]))
    start_us = draw(st.integers(0, 2**32 - 1))
    start_seq = draw(st.integers(0, 2**16 - 1))
    n = draw(st.integers(12, 60))
    ticks, k = [], 0
    for _ in range(n):
        ticks.append(k)
        k += draw(st.sampled_from([1, 1, 1, 1, 2, 3]))  # now and then frames are lost
    frames = [
        ((start_seq + t) % 2**16, (start_us + t * period + draw(st.integers(-50, 50))) % 2**32, t)
        for t in ticks
    ]
    bad = draw(st.integers(1, n - 1))
    flip = draw(st.integers(0, 31))  # one bit of the clock (CRC recomputed: it matches)
    return [(s, us, t * period) for s, us, t in frames], bad, flip


@given(streams())
def test_a_frame_with_a_lying_clock_never_moves_the_others(case) -> None:
    frames, bad, flip = case
    wire = b""
    for i, (seq, us, _) in enumerate(frames):
        mcu = us ^ (1 << flip) if i == bad else us
        wire += encode_frame(seq, mcu, [i])
    decoder = Decoder()
    out = decoder.feed(wire)
    t0 = out[0].time_us
    for f in out:
        i = f.counts[0]
        if i != bad:  # every intact frame that comes out is at its true time (± jitter)
            assert abs((f.time_us - t0) - frames[i][2]) <= 100
    intact = [f for f in out if f.counts[0] != bad]
    assert len(intact) >= len(frames) - 1 - RESYNC_FRAMES  # few dropped beside it
    assert decoder.stats.time_resyncs == 0


def test_one_frame_2_pow_31_ahead_is_dropped_and_counted() -> None:
    clock = StreamClock()
    got = [clock.step(i, i * 12_500) for i in range(10)]
    assert got[-1] == 9 * 12_500
    assert clock.step(10, (10 * 12_500 + 2**31) % 2**32) is None
    assert clock.step(11, 11 * 12_500) == 11 * 12_500
    assert clock.stats.implausible_time == 1


def test_frames_lost_across_a_reconnect_are_counted() -> None:
    clock = StreamClock()
    for i in range(20):
        clock.step(i, 1_000_000 + i * 12_500)
    clock.restart()  # unplugged: the MCU went on sending 45 frames nobody read
    assert clock.step(65, 1_000_000 + 65 * 12_500) == 1_000_000 + 65 * 12_500
    assert clock.stats.reconnect_lost_frames == 45 and clock.stats.reconnect_unknown == 0
    clock.restart()  # the MCU rebooted meanwhile: the loss cannot be told from its frames
    clock.step(0, 5_000)
    assert clock.stats.reconnect_unknown == 1
