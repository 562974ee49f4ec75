"""HX711 24-bit load-cell ADC on two Raspberry Pi GPIO pins, through gpiozero.

Workflow of one :meth:`HX711.read`, as the datasheet tells it:

1. wait (polling, with a timeout derived from the output rate) until DOUT goes low:
   a conversion is ready;
2. clock 24 bits out, MSB first: DOUT is sampled while PD_SCK is high;
3. give 1, 2 or 3 more PD_SCK pulses (25, 26 or 27 in all) to choose the input and
   gain of the *next* conversion: 25 = channel A gain 128, 26 = B gain 32,
   27 = A gain 64;
4. turn the 24-bit two's complement code into a signed integer.

If PD_SCK stays high for 60 µs or more the chip powers down and resets to channel A,
gain 128. Every high period is measured with :func:`time.perf_counter_ns`; a read in
which one reached 60 µs is spoiled. The driver then resets the chip on purpose (PD_SCK
held high, then low) so its state is known, and retries the read a bounded number of
times, selecting its gain again. Only when every attempt was spoiled does
:meth:`HX711.read` return a reading with status ``POWER_DOWN``. Disabling interrupts is
not possible from user space, so on a busy machine a few percent of reads are retried.

Error policy: a sample the chip did deliver is always returned as a
:class:`~models.types.RawReading` and its quality is in ``status`` (``SATURATED`` for
the rail codes 0x7FFFFF/0x800000, ``POWER_DOWN`` for spoiled reads); a chip that does
not answer at all raises :class:`HX711TimeoutError`. Misuse raises
:class:`HX711ConfigError` or :class:`HX711StateError`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from firmware_bridge.errors import BridgeError
from models.types import RawReading, ReadingStatus

__all__ = [
    "GAIN_CHANNEL",
    "HX711",
    "POWER_DOWN_NS",
    "PULSES_FOR_GAIN",
    "SATURATED_CODES",
    "HX711ConfigError",
    "HX711Error",
    "HX711StateError",
    "HX711TimeoutError",
    "default_ready_timeout",
    "is_saturated",
    "to_signed24",
]

PULSES_FOR_GAIN: Final[dict[int, int]] = {128: 25, 32: 26, 64: 27}
"""Total PD_SCK pulses of a read that select each gain for the next conversion."""

GAIN_CHANNEL: Final[dict[int, str]] = {128: "A", 64: "A", 32: "B"}
"""Input channel that each gain belongs to."""

POWER_DOWN_NS: Final = 60_000
"""PD_SCK high for this long (ns) powers the chip down and resets it."""

SATURATED_CODES: Final = frozenset({0x7FFFFF, 0x800000})
"""Raw codes at the ADC rails: the input is out of range, the value means nothing."""

SUPPORTED_SPS: Final = frozenset({10, 80})
"""Output rates the RATE pin can select."""

SETTLING_PERIODS: Final = 4
"""Conversions the datasheet allows for settling after reset or a channel change."""

_BITS: Final = 24


class HX711Error(BridgeError):
    """Base of the errors raised by the HX711 driver."""


class HX711ConfigError(HX711Error, ValueError):
    """A gain, output rate, timeout or pin set the HX711 cannot work with."""


class HX711TimeoutError(HX711Error, TimeoutError):
    """DOUT never went low within the ready timeout: no HX711 answers, or it hangs."""


class HX711StateError(HX711Error, RuntimeError):
    """A read was asked of a closed or powered-down HX711."""


def to_signed24(code: int) -> int:
    """The signed value of a 24-bit two's complement ``code`` (0..0xFFFFFF)."""
    if not 0 <= code <= 0xFFFFFF:
        raise ValueError(f"not a 24-bit code: {code:#x}")
    return code - (1 << _BITS) if code & 0x800000 else code


def is_saturated(code: int) -> bool:
    """True for the rail codes, which the HX711 gives when its input is out of range."""
    return code in SATURATED_CODES


def default_ready_timeout(sps: int) -> float:
    """How long to wait for DOUT low at ``sps``: settling after a reset plus slack.

    After power-up or a channel change the datasheet allows four conversion periods
    to settle (400 ms at 10 SPS, 50 ms at 80 SPS); two more periods cover the read
    that was in flight.
    """
    if sps not in SUPPORTED_SPS:
        raise HX711ConfigError(f"sps must be one of {sorted(SUPPORTED_SPS)}, got {sps}")
    return (SETTLING_PERIODS + 2) / sps


class HX711:
    """One HX711 board: DOUT on a :class:`~gpiozero.DigitalInputDevice`, PD_SCK on a
    :class:`~gpiozero.DigitalOutputDevice`.

    ``gain`` chooses input and gain (128 or 64: channel A, 32: channel B); ``sps`` is
    the rate the board's RATE pin is wired for (10 or 80) and sets the default
    ``ready_timeout``. ``channel`` is the logical channel stamped on the readings.
    ``pin_factory`` goes to gpiozero unchanged (a ``MockFactory`` in tests).

    ``max_retries`` bounds how often a spoiled read (PD_SCK high >= 60 µs) is retried.
    ``clock_high_hook`` is called with the pulse index while PD_SCK is high; it exists
    so tests can stretch a high period on purpose.
    """

    def __init__(
        self,
        dout_pin: int | str,
        pd_sck_pin: int | str,
        *,
        gain: int = 128,
        sps: int = 80,
        pin_factory: Any = None,
        ready_timeout: float | None = None,
        channel: int = 0,
        max_retries: int = 3,
        poll_interval_s: float | None = None,
        clock_high_hook: Callable[[int], None] | None = None,
    ) -> None:
        if gain not in PULSES_FOR_GAIN:
            raise HX711ConfigError(f"gain must be one of 128, 64, 32, got {gain}")
        timeout = default_ready_timeout(sps) if ready_timeout is None else ready_timeout
        if timeout <= 0:
            raise HX711ConfigError(f"ready_timeout must be > 0, got {ready_timeout}")
        if max_retries < 0:
            raise HX711ConfigError(f"max_retries must be >= 0, got {max_retries}")
        self._gain = gain
        self._sps = sps
        self._timeout = timeout
        self._channel = channel
        self._max_retries = max_retries
        self._poll_s = poll_interval_s if poll_interval_s is not None else 1.0 / (sps * 50)
        self._hook = clock_high_hook
        # Gain the chip will use for its next conversion; None while unknown (at open).
        self._pending_gain: int | None = None
        self._powered = True
        self._closed = False
        self.spoiled_reads = 0
        """Read attempts thrown away because PD_SCK stayed high >= 60 µs."""
        self._clk = DigitalOutputDevice(pd_sck_pin, initial_value=False, pin_factory=pin_factory)
        try:
            # DOUT is a push-pull output of the chip: no pull resistor, high = not ready.
            self._dout = DigitalInputDevice(
                dout_pin, pull_up=None, active_state=True, pin_factory=pin_factory
            )
        except BaseException:
            self._clk.close()
            raise

    # -- properties -------------------------------------------------------------

    @property
    def gain(self) -> int:
        """Gain (and so input channel) this driver selects: 128, 64 or 32."""
        return self._gain

    @property
    def sps(self) -> int:
        """Output rate the board is wired for."""
        return self._sps

    @property
    def channel(self) -> int:
        """Logical channel stamped on every reading."""
        return self._channel

    @property
    def ready_timeout(self) -> float:
        """Seconds to wait for DOUT low before :class:`HX711TimeoutError`."""
        return self._timeout

    @property
    def powered(self) -> bool:
        """False between :meth:`power_down` and :meth:`power_up`."""
        return self._powered

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    # -- reading ----------------------------------------------------------------

    def read(self) -> RawReading:
        """One conversion of the selected input, as counts with a status.

        Raises :class:`HX711TimeoutError` when DOUT does not go low in time.
        """
        self._check_usable()
        pulses = PULSES_FOR_GAIN[self._gain]
        for _ in range(self._max_retries + 1):
            if self._pending_gain != self._gain:
                # The ready conversion used another input or gain: clock it out with
                # our pulse count (selecting ours for the next one) and drop it.
                self._wait_ready()
                _, spoiled = self._shift(pulses)
                if spoiled:
                    self._spoiled()
                    continue
                self._pending_gain = self._gain
            t = self._wait_ready()
            code, spoiled = self._shift(pulses)
            if spoiled:
                self._spoiled()
                continue
            self._pending_gain = self._gain
            status = ReadingStatus.SATURATED if is_saturated(code) else ReadingStatus.OK
            return RawReading(self._channel, t, to_signed24(code), status)
        return RawReading(self._channel, time.monotonic(), 0, ReadingStatus.POWER_DOWN)

    def read_median(self, n: int) -> RawReading:
        """The median of ``n`` reads, over the valid ones only.

        Invalid samples (saturated, spoiled) are ignored; when none is valid the result
        carries every status seen and counts 0. Timeouts propagate.
        """
        if n < 1:
            raise HX711ConfigError(f"n must be >= 1, got {n}")
        readings = [self.read() for _ in range(n)]
        good = [r.counts for r in readings if r.valid]
        t = statistics.median(r.t for r in readings)
        if not good:
            status = ReadingStatus.OK
            for r in readings:
                status |= r.status
            return RawReading(self._channel, t, 0, status)
        return RawReading(self._channel, t, round(statistics.median(good)))

    # -- power ------------------------------------------------------------------

    def power_down(self) -> None:
        """Hold PD_SCK high past 60 µs: the chip stops converting and draws ~1 µA."""
        self._check_open()
        self._hold_high()
        self._powered = False

    def power_up(self) -> None:
        """Bring PD_SCK low: the chip resets (channel A, gain 128) and converts again.

        The first read afterwards re-selects this driver's gain; the datasheet allows
        four conversion periods to settle, which the default timeout covers.
        """
        self._check_open()
        self._clk.off()
        self._powered = True
        self._pending_gain = 128

    def close(self) -> None:
        """Release both pins. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._dout.close()
        finally:
            self._clk.close()

    def __enter__(self) -> HX711:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("on" if self._powered else "powered down")
        return f"<HX711 channel={self._channel} gain={self._gain} sps={self._sps} {state}>"

    # -- the wire ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise HX711StateError("HX711 is closed")

    def _check_usable(self) -> None:
        self._check_open()
        if not self._powered:
            raise HX711StateError("HX711 is powered down; call power_up() first")

    def _wait_ready(self) -> float:
        """Poll DOUT until low; return the monotonic time it was seen low."""
        dout = self._dout
        deadline = time.monotonic() + self._timeout
        while dout.value:
            if time.monotonic() >= deadline:
                raise HX711TimeoutError(
                    f"HX711 on channel {self._channel}: DOUT stayed high for "
                    f"{self._timeout:.3f} s (not connected, not powered, or hung)"
                )
            time.sleep(self._poll_s)
        return time.monotonic()

    def _shift(self, pulses: int) -> tuple[int, bool]:
        """Clock ``pulses`` pulses, sampling the first 24 bits; (code, spoiled).

        Each high period is bracketed by two ``perf_counter_ns`` calls, so the measured
        time is never shorter than the one the chip saw. Clocking stops at the first
        spoiled pulse: the chip has already reset.
        """
        clk_on = self._clk.on
        clk_off = self._clk.off
        dout = self._dout
        hook = self._hook
        now = time.perf_counter_ns
        code = 0
        for i in range(pulses):
            t0 = now()
            clk_on()
            if hook is not None:
                hook(i)
            if i < _BITS:
                code = (code << 1) | dout.value
            clk_off()
            if now() - t0 >= POWER_DOWN_NS:
                return code, True
        return code, False

    def _hold_high(self) -> None:
        """PD_SCK high for twice the power-down threshold: the chip is surely off."""
        self._clk.on()
        t0 = time.perf_counter_ns()
        while time.perf_counter_ns() - t0 < 2 * POWER_DOWN_NS:
            time.sleep(POWER_DOWN_NS / 1e9)

    def _spoiled(self) -> None:
        """Put the chip in a known state after a spoiled read.

        The measured high period is an upper bound, so the chip may or may not have
        reset, and clocking stopped part-way. A deliberate power-down and power-up
        settles it: the chip restarts on channel A, gain 128, with a fresh conversion.
        """
        self.spoiled_reads += 1
        self._hold_high()
        self._clk.off()
        self._pending_gain = 128
