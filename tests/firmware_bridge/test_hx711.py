"""The HX711 driver against the simulated chip on gpiozero MockFactory pins.

Reads can be spoiled for real when the machine stalls a clock pulse past 60 µs; the
driver then resets the chip and retries. Tests that need exact values use constant
sources, or compare with what the simulated chip records as clocked out, and allow
more retries than the default.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins.mock import MockFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import BridgeError
from firmware_bridge.hx711 import (
    HX711,
    POWER_DOWN_NS,
    PULSES_FOR_GAIN,
    HX711ConfigError,
    HX711StateError,
    HX711TimeoutError,
    default_ready_timeout,
    to_signed24,
)
from firmware_bridge.mock_hx711 import CountSource, MockHX711, clamp24
from models.types import ReadingStatus

DOUT, SCK = 5, 6
MAX, MIN = 0x7FFFFF, -0x800000
VALUES = {128: 111_111, 64: 55_555, 32: -33_333}
# A loaded test machine can stall a clock pulse past 60 µs now and then; tests that
# are not about retries give the driver room so a value test never hinges on it.
PATIENT = 20


@contextmanager
def rig(
    values: dict[int, CountSource] | CountSource = 0, *, gain: int = 128, **kw: Any
) -> Iterator[tuple[HX711, MockHX711]]:
    """A fresh MockFactory with a simulated chip and the driver on the same pins."""
    factory = MockFactory()
    chip = MockHX711(DOUT, SCK, pin_factory=factory, values=values)
    kw.setdefault("max_retries", PATIENT)
    hx = HX711(DOUT, SCK, gain=gain, pin_factory=factory, **kw)
    try:
        yield hx, chip
    finally:
        hx.close()
        chip.close()


def stall(ns: int = 2 * POWER_DOWN_NS) -> None:
    """Keep PD_SCK high past the power-down threshold."""
    t0 = time.perf_counter_ns()
    while time.perf_counter_ns() - t0 < ns:
        pass


class StallOnce:
    """A clock hook that stretches one high period: the first while ``when()`` holds."""

    def __init__(self) -> None:
        self.when: Callable[[], bool] = lambda: True
        self.done = False

    def __call__(self, pulse: int) -> None:
        if not self.done and pulse == 3 and self.when():
            self.done = True
            stall()


# -- two's complement -------------------------------------------------------------


@given(st.integers(MIN, MAX))
def test_to_signed24_inverts_the_24_bit_code(value: int) -> None:
    assert to_signed24(value & 0xFFFFFF) == value


@pytest.mark.parametrize("code", [-1, 0x1000000])
def test_to_signed24_rejects_codes_wider_than_24_bits(code: int) -> None:
    with pytest.raises(ValueError):
        to_signed24(code)


@settings(deadline=None, max_examples=60)
@given(st.integers(MIN, MAX))
def test_read_returns_the_signed_value_the_chip_converted(value: int) -> None:
    with rig(value) as (hx, _):
        r = hx.read()
    assert r.counts == value
    assert r.valid == (value not in (MAX, MIN))


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0, ReadingStatus.OK),
        (1, ReadingStatus.OK),
        (-1, ReadingStatus.OK),
        (MAX - 1, ReadingStatus.OK),
        (MIN + 1, ReadingStatus.OK),
        (MAX, ReadingStatus.SATURATED),
        (MIN, ReadingStatus.SATURATED),
        (MAX + 5000, ReadingStatus.SATURATED),
        (MIN - 5000, ReadingStatus.SATURATED),
    ],
)
def test_edge_codes_and_saturation(value: int, status: ReadingStatus) -> None:
    with rig(value, channel=3) as (hx, _):
        r = hx.read()
    assert r.status == status
    assert r.counts == clamp24(value)
    assert r.channel == 3


# -- channel and gain selection -----------------------------------------------------


@pytest.mark.parametrize("gain", [128, 64, 32])
def test_pulse_count_selects_channel_and_gain(gain: int) -> None:
    with rig(VALUES, gain=gain) as (hx, chip):
        readings = [hx.read() for _ in range(3)]
        assert [r.counts for r in readings] == [VALUES[gain]] * 3
        assert set(chip.pulse_counts) == {PULSES_FOR_GAIN[gain]}
        assert chip.gain == gain
        assert chip.channel == ("B" if gain == 32 else "A")
        # The chip starts on A/128; the driver drops what it reads before its own
        # selection takes effect (once at open, again after any power-down).
        assert chip.conversions[0].gain == 128
        assert [c.gain for c in chip.reads].count(gain) >= 3
        assert chip.reads[-1].gain == gain


def test_simulated_chip_follows_the_datasheet_when_clocked_by_hand() -> None:
    factory = MockFactory()
    code = 0b1010_0000_1111_0000_0101_0011
    # A stalled test process must not power the chip down while it is clocked by hand.
    chip = MockHX711(
        DOUT,
        SCK,
        pin_factory=factory,
        values=to_signed24(code),
        ready_after_polls=3,
        power_down_ns=10**9,
    )
    clk = DigitalOutputDevice(SCK, pin_factory=factory)
    dout = DigitalInputDevice(DOUT, pull_up=None, active_state=True, pin_factory=factory)
    # Opening the input device read DOUT once; two more polls still see "not ready".
    assert [dout.value for _ in range(3)] == [1, 1, 0]
    bits = []
    for _ in range(24):
        clk.on()
        bits.append(dout.value)
        clk.off()
    assert int("".join(map(str, bits)), 2) == code  # MSB first
    for _ in range(2):  # 26 pulses in all: channel B, gain 32
        clk.on()
        assert dout.value == 1  # the 25th pulse pulls DOUT high
        clk.off()
    assert dout.value == 1
    assert chip.pulse_counts == [26]
    assert chip.channel == "B"
    assert chip.gain == 32


# -- timeouts ------------------------------------------------------------------------


def test_timeout_when_dout_never_goes_low() -> None:
    with rig(7, ready_timeout=0.02) as (hx, chip):
        chip.hang = True
        with pytest.raises(HX711TimeoutError) as info:
            hx.read()
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, BridgeError)
        chip.hang = False
        assert hx.read().counts == 7


def test_default_timeout_covers_settling_at_both_rates() -> None:
    for sps in (10, 80):
        # Four conversion periods to settle after reset, plus the read in flight.
        assert default_ready_timeout(sps) > 4 / sps
    assert default_ready_timeout(10) > default_ready_timeout(80)
    with rig(0) as (hx, _):
        assert hx.ready_timeout == default_ready_timeout(80)


@pytest.mark.parametrize(
    "kwargs", [{"gain": 100}, {"sps": 20}, {"ready_timeout": 0.0}, {"max_retries": -1}]
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any]) -> None:
    factory = MockFactory()
    with pytest.raises(HX711ConfigError) as info:
        HX711(DOUT, SCK, pin_factory=factory, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


# -- power-down ------------------------------------------------------------------------


def test_long_high_spoils_the_read_and_the_driver_recovers_its_gain() -> None:
    hook = StallOnce()
    with rig(VALUES, gain=64, clock_high_hook=hook) as (hx, chip):
        hook.when = lambda: chip.gain == 64  # spoil a read of a gain-64 conversion
        r = hx.read()
        assert hook.done
        assert r.valid
        assert r.counts == VALUES[64]
        assert hx.spoiled_reads >= 1
        assert chip.power_downs >= 1
        assert chip.spoiled_reads >= 1
        # After the power-down the chip restarted on A/128; the driver re-selected 64.
        gains = [c.gain for c in chip.conversions]
        first_64 = gains.index(64)
        assert 128 in gains[first_64:]
        assert chip.pulse_counts[-1] == PULSES_FOR_GAIN[64]
        assert chip.gain == 64
        assert hx.read().counts == VALUES[64]


def test_spoiled_on_every_attempt_reports_power_down() -> None:
    with rig(42, max_retries=1, clock_high_hook=lambda _: stall()) as (hx, chip):
        r = hx.read()
        assert r.status == ReadingStatus.POWER_DOWN
        assert not r.valid
        assert hx.spoiled_reads == 2
        assert chip.power_downs >= 2
        assert chip.reads == []  # nothing was ever clocked out completely


def test_power_down_and_up() -> None:
    with rig(VALUES, gain=32) as (hx, chip):
        assert hx.read().counts == VALUES[32]
        hx.power_down()
        assert not hx.powered
        assert not chip.powered
        with pytest.raises(HX711StateError):
            hx.read()
        hx.power_up()
        assert chip.powered
        assert chip.gain == 128  # reset by the power cycle
        assert hx.read().counts == VALUES[32]
        assert chip.gain == 32
        assert chip.power_downs >= 1


# -- median ------------------------------------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(
    st.lists(
        st.one_of(st.integers(MIN + 1, MAX - 1), st.sampled_from([MAX, MIN])),
        min_size=1,
        max_size=9,
    )
)
def test_median_of_n_ignores_invalid_samples(values: list[int]) -> None:
    source = itertools.cycle(values)
    with rig(lambda: next(source)) as (hx, chip):
        hx.read()  # the first read primes the gain
        r = hx.read_median(len(values))
        used = [c.counts for c in chip.reads[-len(values) :]]
    good = [v for v in used if v not in (MAX, MIN)]
    if good:
        assert r.valid
        assert r.counts == round(statistics.median(good))
    else:
        assert r.status & ReadingStatus.SATURATED
        assert not r.valid


def test_median_is_not_pulled_by_saturated_samples() -> None:
    source = itertools.cycle([1000, MAX, 1010, MAX, 1020, MAX])
    with rig(lambda: next(source)) as (hx, chip):
        r = hx.read_median(12)
        used = {c.counts for c in chip.reads[-12:]}
    assert MAX in used  # saturated samples were read and dropped
    assert 1000 <= r.counts <= 1020


# -- lifecycle ---------------------------------------------------------------------------


def test_close_releases_the_pins_and_refuses_reads() -> None:
    factory = MockFactory()
    chip = MockHX711(DOUT, SCK, pin_factory=factory, values=9)
    with HX711(DOUT, SCK, pin_factory=factory) as hx:
        assert hx.read().counts == 9
    assert hx.closed
    hx.close()  # twice is fine
    with pytest.raises(HX711StateError):
        hx.read()
    with HX711(DOUT, SCK, pin_factory=factory) as again:
        assert again.read().counts == 9
    chip.close()


def test_mock_must_claim_the_pins_before_the_driver() -> None:
    factory = MockFactory()
    HX711(DOUT, SCK, pin_factory=factory)
    with pytest.raises(ValueError, match="before the driver"):
        MockHX711(DOUT, SCK, pin_factory=factory)
