"""A simulated HX711 on gpiozero ``MockFactory`` pins, following the datasheet.

Create a :class:`MockHX711` on a ``MockFactory`` *before* the driver opens the same
pins: it claims them with its own pin classes, which the factory then hands to the
driver's gpiozero devices. From then on the chip lives on pin events:

- PD_SCK edges (the driver writing the clock pin) shift the data out, MSB first, one
  bit per rising edge; the 25th rising edge pulls DOUT back high;
- a DOUT read with PD_SCK low after 25, 26 or 27 pulses ends the read: the count
  selects the next conversion (25 = A/128, 26 = B/32, 27 = A/64) and it starts;
- a conversion is ready (DOUT low) after ``ready_after_polls`` reads of DOUT, a
  virtual clock that keeps tests fast and deterministic; ``hang`` keeps DOUT high;
- PD_SCK high for >= 60 µs (measured with :func:`time.perf_counter_ns`, like the
  driver) powers the chip down: DOUT high, the read in flight lost; PD_SCK low again
  resets it to A/128 and starts a new conversion.

Values come per gain (128 and 64 are channel A, 32 is channel B) from an int, a
callable or an iterable; values past the 24-bit range saturate at 0x7FFFFF/0x800000.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

from gpiozero.pins.mock import MockFactory, MockPin

from firmware_bridge.hx711 import GAIN_CHANNEL, POWER_DOWN_NS, PULSES_FOR_GAIN

__all__ = ["Conversion", "CountSource", "MockHX711", "clamp24"]

CountSource = int | Callable[[], int] | Iterable[int]
"""Where a channel's values come from: a constant, a function, or a sequence (the last
value repeats once it runs out)."""

_GAIN_FOR_PULSES: Final = {p: g for g, p in PULSES_FOR_GAIN.items()}
_MAX: Final = 0x7FFFFF
_MIN: Final = -0x800000

Phase = Literal["converting", "ready", "shifting", "off"]


def clamp24(value: int) -> int:
    """``value`` saturated to the signed 24-bit range, as the ADC output saturates."""
    return max(_MIN, min(_MAX, value))


@dataclass(frozen=True, slots=True)
class Conversion:
    """One conversion the chip made: on which input, at which gain, with what result."""

    channel: str
    gain: int
    counts: int

    @property
    def code(self) -> int:
        """The 24-bit two's complement code the chip shifts out."""
        return self.counts & 0xFFFFFF


class _HX711Pin(MockPin):
    """A mock pin that tells its simulated HX711 about the driver's activity."""

    hx711: MockHX711 | None = None


class _ClockPin(_HX711Pin):
    def _set_state(self, value: Any) -> None:
        before = bool(self._state)
        super()._set_state(value)
        chip = self.hx711
        if chip is not None and bool(value) != before:
            if value:
                chip._rising()
            else:
                chip._falling()


class _DataPin(_HX711Pin):
    def _get_state(self) -> bool:
        chip = self.hx711
        if chip is not None:
            chip._polled()
        return bool(self._state)


def _as_callable(source: CountSource) -> Callable[[], int]:
    if isinstance(source, int):
        value = source
        return lambda: value
    if callable(source):
        return source
    it: Iterator[int] = iter(source)
    last = [0]

    def nxt() -> int:
        last[0] = next(it, last[0])
        return last[0]

    return nxt


class MockHX711:
    """A datasheet-faithful HX711 answering on two pins of a gpiozero ``MockFactory``.

    ``values`` maps a gain (128, 64: channel A; 32: channel B) to a :data:`CountSource`;
    a bare source feeds every gain; missing gains read 0. ``ready_after_polls`` is how
    many DOUT reads see "not ready" after a conversion starts. Set ``hang`` to keep DOUT
    high forever. ``power_down_ns`` is the datasheet's 60 µs; raise it only to clock
    the chip by hand from a test, never under the driver (which resets the chip by
    holding PD_SCK high for twice 60 µs). What the chip saw is kept in
    ``pulse_counts``, ``conversions``, ``reads``, ``power_downs``, ``spoiled_reads``
    and ``stray_pulses``.
    """

    def __init__(
        self,
        dout_pin: int | str,
        pd_sck_pin: int | str,
        *,
        pin_factory: MockFactory,
        values: Mapping[int, CountSource] | CountSource = 0,
        ready_after_polls: int = 1,
        hang: bool = False,
        power_down_ns: int = POWER_DOWN_NS,
    ) -> None:
        if ready_after_polls < 0:
            raise ValueError(f"ready_after_polls must be >= 0, got {ready_after_polls}")
        self._clk = pin_factory.pin(pd_sck_pin, pin_class=_ClockPin)
        self._dout = pin_factory.pin(dout_pin, pin_class=_DataPin)
        for pin, cls in ((self._clk, _ClockPin), (self._dout, _DataPin)):
            if not isinstance(pin, cls) or pin.hx711 is not None:
                raise ValueError(
                    f"pin {pin.info.name} is already in use: create MockHX711 before "
                    "the driver, one per pin pair"
                )
        self._sources: dict[int, Callable[[], int]] = {g: (lambda: 0) for g in GAIN_CHANNEL}
        if isinstance(values, Mapping):
            for gain, source in values.items():
                self.set_values(gain, source)
        else:
            shared = _as_callable(values)
            self._sources = dict.fromkeys(GAIN_CHANNEL, shared)
        self.ready_after_polls = ready_after_polls
        self.hang = hang
        self.power_down_ns = power_down_ns
        self.pulse_counts: list[int] = []
        """Pulses of every finished read, in order."""
        self.conversions: list[Conversion] = []
        """Every conversion that became ready, in order."""
        self.reads: list[Conversion] = []
        """Conversions whose 24 bits a host clocked out, with no power-down before the
        read ended."""
        self.power_downs = 0
        """Times PD_SCK stayed high >= 60 µs."""
        self.spoiled_reads = 0
        """Reads cut off by a power-down while bits were being shifted out."""
        self.stray_pulses = 0
        """PD_SCK pulses given while no data was ready (ignored by the chip)."""
        self._gain = 128
        self._phase: Phase = "converting"
        self._polls = 0
        self._pulses = 0
        self._ready = Conversion("A", 128, 0)
        self._t_high_ns = 0
        self._clk.hx711 = self
        self._dout.hx711 = self
        self._dout.drive_high()

    # -- what tests look at -----------------------------------------------------

    @property
    def gain(self) -> int:
        """Gain of the conversion in progress (or ready)."""
        return self._gain

    @property
    def channel(self) -> str:
        """Input ("A" or "B") of the conversion in progress (or ready)."""
        return GAIN_CHANNEL[self._gain]

    @property
    def powered(self) -> bool:
        """False while PD_SCK has been high for 60 µs or more."""
        return self._phase != "off" and not self._long_high()

    def set_values(self, gain: int, source: CountSource) -> None:
        """Feed the input selected by ``gain`` from ``source`` from now on."""
        if gain not in GAIN_CHANNEL:
            raise ValueError(f"gain must be one of 128, 64, 32, got {gain}")
        self._sources[gain] = _as_callable(source)

    def close(self) -> None:
        """Detach from the pins; they become plain mock pins again."""
        self._clk.hx711 = None
        self._dout.hx711 = None

    def __enter__(self) -> MockHX711:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- pin events -------------------------------------------------------------

    def _long_high(self) -> bool:
        return (
            bool(self._clk.state) and time.perf_counter_ns() - self._t_high_ns >= self.power_down_ns
        )

    def _rising(self) -> None:
        self._t_high_ns = time.perf_counter_ns()
        if self._phase in ("converting", "off"):
            self.stray_pulses += 1
            return
        self._phase = "shifting"
        self._pulses += 1
        if self._pulses <= 24:
            self._drive((self._ready.code >> (24 - self._pulses)) & 1)
            if self._pulses == 24:
                self.reads.append(self._ready)
        else:
            self._drive(1)

    def _falling(self) -> None:
        if self._phase != "off" and time.perf_counter_ns() - self._t_high_ns >= self.power_down_ns:
            self._power_down()
        if self._phase == "off":
            self._start_conversion(128)

    def _polled(self) -> None:
        if self._clk.state:
            if self._phase != "off" and self._long_high():
                self._power_down()
            return
        if self._phase == "shifting" and self._pulses >= 25:
            self.pulse_counts.append(self._pulses)
            self._start_conversion(_GAIN_FOR_PULSES.get(self._pulses, self._gain))
        if self._phase == "converting":
            self._polls += 1
            if not self.hang and self._polls > self.ready_after_polls:
                self._finish_conversion()

    # -- chip state -------------------------------------------------------------

    def _power_down(self) -> None:
        self.power_downs += 1
        if self._phase == "shifting":
            self.spoiled_reads += 1
            if self._pulses >= 24:
                self.reads.pop()
        self._phase = "off"
        self._drive(1)

    def _start_conversion(self, gain: int) -> None:
        self._gain = gain
        self._phase = "converting"
        self._polls = 0
        self._pulses = 0
        self._drive(1)

    def _finish_conversion(self) -> None:
        counts = clamp24(int(self._sources[self._gain]()))
        self._ready = Conversion(GAIN_CHANNEL[self._gain], self._gain, counts)
        self.conversions.append(self._ready)
        self._phase = "ready"
        self._drive(0)

    def _drive(self, level: int) -> None:
        pin = self._dout
        if pin.function != "input":  # pragma: no cover - only if a test misuses the pin
            return
        if level:
            pin.drive_high()
        else:
            pin.drive_low()
