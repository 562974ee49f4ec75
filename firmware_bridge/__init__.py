"""The hardware boundary for weight.

HX711 boards on the Pi's GPIO (:mod:`firmware_bridge.hx711`, on gpiozero), a
microcontroller reading many HX711s over USB serial (:mod:`firmware_bridge.protocol`,
:mod:`firmware_bridge.serial_link`, firmware in ``firmware/``), or the store-twin
simulator (:mod:`firmware_bridge.sim`). All of them yield raw counts as
:class:`models.types.ReadingBlock`.
"""
