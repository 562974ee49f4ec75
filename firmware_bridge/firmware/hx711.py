"""Up to 8 HX711s read in parallel on an RP2040 (MicroPython, bit-banged on SIO).

All chips share one PD_SCK line; each has its own DOUT pin. ``HX711Bank.read`` waits
until every chip that answers has a conversion ready (DOUT low), then clocks the
shared line 25 times (channel A, gain 128) with interrupts off and samples all DOUT
pins at once from the SIO GPIO_IN register, so one read costs ~30 us whatever the
chip count. Status bits per channel are the host's ``models.types.ReadingStatus``.
"""

import time

import machine
import micropython
from machine import Pin

SIO_GPIO_IN = 0xD0000004
TIMER_RAWL = 0x40054028  # low 32 bits of the RP2040's 1 MHz timer: wraps at 2**32 us

OK = 0
SATURATED = 1
NOT_READY = 2
POWER_DOWN = 4
DISCONNECTED = 8
STALE = 16

RAIL_HIGH = 0x7FFFFF
RAIL_LOW = -0x800000
POWER_DOWN_US = 60  # PD_SCK high this long resets the chip (datasheet)


@micropython.viper
def _shift_in(sck_mask: int, pulses: int, words):
    """Clock ``pulses`` pulses on SCK; store GPIO_IN after each of the first 24 rises."""
    buf = ptr32(words)
    gin = ptr32(0xD0000004)
    oset = ptr32(0xD0000014)
    oclr = ptr32(0xD0000018)
    i = 0
    while i < pulses:
        oset[0] = sck_mask
        d = 0
        while d < 16:  # >= 0.2 us high (T3); DOUT valid 0.1 us after the rise (T2)
            d += 1
        if i < 24:
            buf[i] = gin[0]
        oclr[0] = sck_mask
        d = 0
        while d < 16:  # >= 0.2 us low (T4)
            d += 1
        i += 1


@micropython.viper
def _transpose(words, pins, n: int, out):
    """Bit ``pins[c]`` of the 24 GPIO snapshots, MSB first, as channel ``c``'s raw code."""
    w = ptr32(words)
    p8 = ptr8(pins)
    o = ptr32(out)
    c = 0
    while c < n:
        p = p8[c]
        v = 0
        i = 0
        while i < 24:
            v = (v << 1) | ((w[i] >> p) & 1)
            i += 1
        o[c] = v
        c += 1


def mcu_us():
    """The MCU microsecond clock as an unsigned 32-bit value (wraps every ~71.6 min)."""
    return machine.mem32[TIMER_RAWL] & 0xFFFFFFFF


class HX711Bank:
    """One shared PD_SCK pin and up to 8 DOUT pins; reads every chip at each call.

    ``ready_timeout_ms`` bounds the wait for DOUT low (80 SPS: a conversion every
    12.5 ms). A chip that misses it keeps its previous count with NOT_READY|STALE;
    after ``dead_after`` misses in a row it reports DISCONNECTED (DOUT has a pull-up,
    so a missing chip never looks ready).
    """

    def __init__(self, sck_pin, dout_pins, gain_pulses=25, ready_timeout_ms=50, dead_after=10):
        if not 1 <= len(dout_pins) <= 8:
            raise ValueError("1..8 DOUT pins")
        self.n = len(dout_pins)
        self.sck = Pin(sck_pin, Pin.OUT, value=0)
        self.douts = [Pin(p, Pin.IN, Pin.PULL_UP) for p in dout_pins]
        self.sck_mask = 1 << sck_pin
        self.pins = bytearray(dout_pins)
        self.masks = [1 << p for p in dout_pins]
        self.dout_mask = 0
        for m in self.masks:
            self.dout_mask |= m
        self.gain_pulses = gain_pulses
        self.timeout_ms = ready_timeout_ms
        self.dead_after = dead_after
        self.misses = [0] * self.n
        self.last = [0] * self.n
        self._words = bytearray(24 * 4)
        self._raw = bytearray(self.n * 4)

    def power_down(self):
        """Hold PD_SCK high: every chip sleeps (wake with ``power_up``)."""
        self.sck.value(1)
        time.sleep_us(100)

    def power_up(self):
        """Release PD_SCK: the chips reset and start converting (first read after ~400 ms)."""
        self.sck.value(0)

    def _wait_mask(self):
        """DOUT pins worth waiting for: every chip not already given up as disconnected."""
        mask = 0
        for c in range(self.n):
            if self.misses[c] < self.dead_after:
                mask |= self.masks[c]
        return mask

    def read(self, counts, status):
        """Fill ``counts``/``status`` (lists of length n); returns the MCU us of the read.

        A disconnected chip is not waited for (the others keep their rate) but is
        still read whenever its DOUT is low, so it comes back by itself.
        """
        wait = self._wait_mask()
        if not wait:  # nothing answers: keep a slow heartbeat of DISCONNECTED frames
            time.sleep_ms(self.timeout_ms)
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while machine.mem32[SIO_GPIO_IN] & wait:
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                break
            time.sleep_us(50)
        busy = machine.mem32[SIO_GPIO_IN] & self.dout_mask
        t = mcu_us()
        stretched = False
        if busy != self.dout_mask:  # at least one chip is ready: clock them all out
            irq = machine.disable_irq()
            t0 = time.ticks_us()
            _shift_in(self.sck_mask, self.gain_pulses, self._words)
            took = time.ticks_diff(time.ticks_us(), t0)
            machine.enable_irq(irq)
            # A high phase can only have reached 60 us if the whole read took longer.
            stretched = took >= POWER_DOWN_US
            _transpose(self._words, self.pins, self.n, self._raw)
        for c in range(self.n):
            if busy & self.masks[c]:
                if self.misses[c] < self.dead_after:
                    self.misses[c] += 1
                if self.misses[c] >= self.dead_after:
                    counts[c] = 0
                    status[c] = DISCONNECTED
                else:
                    counts[c] = self.last[c]
                    status[c] = NOT_READY | STALE
                continue
            self.misses[c] = 0
            v = self._raw[4 * c] | (self._raw[4 * c + 1] << 8) | (self._raw[4 * c + 2] << 16)
            if v & 0x800000:
                v -= 0x1000000
            st = OK
            if v == RAIL_HIGH or v == RAIL_LOW:
                st |= SATURATED
            if stretched:
                st |= POWER_DOWN
            counts[c] = v
            status[c] = st
            self.last[c] = v
        return t
