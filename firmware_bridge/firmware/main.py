"""shelfsense MCU firmware (MicroPython on an RP2040): HX711s in, frames out on USB CDC.

Boot runs this file: it reads every HX711 of the bank at the chips' own rate
(80 SPS with RATE tied high) and writes one COBS frame per sample instant to
``sys.stdout.buffer`` (the USB CDC serial port). The host decodes them with
``firmware_bridge.protocol``. Ctrl-C from the host (mpremote) stops the loop.
Edit the pin table below to match the wiring (see README.md).
"""

import sys
import time

import machine

from frame import Framer
from hx711 import HX711Bank

SCK_PIN = 2
DOUT_PINS = (3, 4, 5, 6, 7, 8, 9, 10)  # one per HX711, up to 8
GAIN_PULSES = 25  # 25: channel A gain 128; 26: channel B gain 32; 27: channel A gain 64


def run():
    """Read, frame and write forever."""
    bank = HX711Bank(SCK_PIN, DOUT_PINS, gain_pulses=GAIN_PULSES)
    framer = Framer(len(DOUT_PINS))
    out = sys.stdout.buffer
    counts = [0] * bank.n
    status = [0] * bank.n
    led = machine.Pin("LED", machine.Pin.OUT)
    bank.power_up()
    out.write(b"\x00")  # a delimiter first: the host drops whatever preceded it
    k = 0
    while True:
        t = bank.read(counts, status)
        out.write(framer.frame(counts, status, t))
        k += 1
        if k % 40 == 0:
            led.toggle()  # ~1 Hz blink at 80 SPS: alive and streaming


def main():
    """Run; on an unexpected error wait a second and reboot (Ctrl-C still stops it)."""
    try:
        run()
    except KeyboardInterrupt:
        raise
    except Exception as err:  # the field unit must come back by itself
        sys.print_exception(err)
        time.sleep(1)
        machine.reset()


main()
