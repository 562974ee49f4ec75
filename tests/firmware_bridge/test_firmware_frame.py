"""The firmware under CPython: frame.py against the host decoder, hx711.py on a simulated bank.

hx711.py is MicroPython (viper, machine registers); here it runs with fake ``machine``
and ``micropython`` modules, viper's ``ptr32``/``ptr8`` as memoryviews and register
objects, and a board that simulates eight HX711s on the shared clock line.
"""

from __future__ import annotations

import importlib.util
import sys
from binascii import crc_hqx
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.decoder import Decoder
from firmware_bridge.protocol import cobs_decode, decode_frame, encode_frame

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_bridge" / "firmware"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"shelfsense_fw_{name}", FIRMWARE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _load("frame")


@st.composite
def samples(draw: st.DrawFn) -> tuple[int, int, list[int], list[int], int]:
    n = draw(st.integers(1, 16))
    counts = draw(st.lists(st.integers(-(2**23), 2**23 - 1), min_size=n, max_size=n))
    status = draw(st.lists(st.integers(0, 31), min_size=n, max_size=n))
    return n, draw(st.integers(0, 65535)), counts, status, draw(st.integers(0, 2**32 - 1))


@given(samples())
def test_host_decodes_what_firmware_encodes(sample: tuple[int, int, list[int], list[int], int]):
    n, seq, counts, status, us = sample
    framer = fw.Framer(n, seq=seq)
    wire = framer.frame(counts, status, us)
    frame = decode_frame(wire)
    assert (frame.seq, frame.mcu_us) == (seq, us)
    assert list(frame.counts) == counts and list(frame.status) == status
    assert wire == encode_frame(seq, us, counts, status)  # byte for byte the same layout
    assert framer.seq == (seq + 1) % 65536


@given(st.binary(max_size=600))
def test_crc_and_cobs_match_the_host(data: bytes) -> None:
    assert fw.crc16(data) == crc_hqx(data, 0)
    encoded = fw.cobs_encode(data)
    assert b"\x00" not in encoded
    assert cobs_decode(encoded) == data


def test_sequence_wraps_and_stream_decodes() -> None:
    framer = fw.Framer(8, seq=65534)
    stream = b"\x00" + b"".join(
        framer.frame([i] * 8, [0] * 8, 2**32 - 10_000 + i * 12_500) for i in range(5)
    )
    decoder = Decoder()
    frames = decoder.feed(stream)
    assert [f.seq for f in frames] == [65534, 65535, 0, 1, 2]
    assert decoder.stats.seq_gaps == 0 and decoder.stats.dropped == 0
    assert [f.time_us - frames[0].time_us for f in frames] == [i * 12_500 for i in range(5)]


def test_framer_refuses_bad_channel_counts() -> None:
    for n in (0, 17):
        with pytest.raises(ValueError):
            fw.Framer(n)
    assert fw.clamp24(2**30) == 2**23 - 1 and fw.clamp24(-(2**30)) == -(2**23)


@pytest.mark.parametrize("name", ["main.py", "hx711.py", "frame.py"])
def test_firmware_sources_compile(name: str) -> None:
    source = (FIRMWARE / name).read_text()
    compile(source, str(FIRMWARE / name), "exec")


# ---------------------------------------------------------------- hx711.py on a simulated bank

SIO_IN, SIO_SET, SIO_CLR = 0xD0000004, 0xD0000014, 0xD0000018
SCK = 2
DOUTS = (3, 4, 5, 6, 7, 8, 9, 10)


class SimChip:
    """One HX711 as its DOUT pin shows it: low when a conversion is ready, then 24 bits."""

    def __init__(self) -> None:
        self.connected = True
        self.ready = False
        self.value = 0
        self.pulses = 0

    def dout(self) -> int:
        if not self.connected or not self.ready:
            return 1  # the pull-up
        if self.pulses == 0:
            return 0
        if self.pulses <= 24:
            return ((self.value & 0xFFFFFF) >> (24 - self.pulses)) & 1
        return 1

    def rise(self) -> None:
        if self.connected and self.ready:
            self.pulses += 1

    def end_read(self) -> None:
        if self.pulses >= 25:
            self.ready = False
        self.pulses = 0


class SimBoard:
    """SIO registers, the timer and a fake clock around eight simulated chips."""

    def __init__(self, us_per_pulse: int = 0) -> None:
        self.us = 1_000_000
        self.us_per_pulse = us_per_pulse
        self.chips = [SimChip() for _ in DOUTS]
        self.rises = 0

    # machine.mem32 and viper ptr32 on register addresses
    def __getitem__(self, addr: int) -> int:
        if addr == SIO_IN:
            return sum(chip.dout() << pin for chip, pin in zip(self.chips, DOUTS, strict=True))
        if addr == 0x40054028:
            return self.us & 0xFFFFFFFF
        raise KeyError(hex(addr))

    def write(self, addr: int, value: int) -> None:
        if addr == SIO_SET and value & (1 << SCK):
            self.rises += 1
            self.us += self.us_per_pulse
            for chip in self.chips:
                chip.rise()

    def end_reads(self) -> None:
        for chip in self.chips:
            chip.end_read()


class _Reg:
    def __init__(self, board: SimBoard, addr: int) -> None:
        self.board, self.addr = board, addr

    def __getitem__(self, i: int) -> int:
        return self.board[self.addr]

    def __setitem__(self, i: int, value: int) -> None:
        self.board.write(self.addr, value)


class _Pin:
    OUT, IN, PULL_UP = 1, 0, 2

    def __init__(self, pin: object, mode: int = 0, pull: int | None = None, value: int = 0) -> None:
        self.pin = pin

    def value(self, v: int | None = None) -> int:
        return 0


def load_bank(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, SimBoard]:
    """hx711.py loaded against fake ``machine``/``micropython`` and a simulated board."""
    board = SimBoard()
    machine = ModuleType("machine")
    machine.Pin = _Pin  # type: ignore[attr-defined]
    machine.mem32 = board  # type: ignore[attr-defined]
    machine.disable_irq = lambda: 0  # type: ignore[attr-defined]
    machine.enable_irq = lambda state: None  # type: ignore[attr-defined]
    micropython = ModuleType("micropython")
    micropython.viper = micropython.native = lambda f: f  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "micropython", micropython)
    module = _load("hx711")

    def ptr32(x: object) -> object:
        return _Reg(board, x) if isinstance(x, int) else memoryview(x).cast("I")  # type: ignore[arg-type]

    clock = ModuleType("fake_time")
    clock.ticks_ms = lambda: board.us // 1000  # type: ignore[attr-defined]
    clock.ticks_us = lambda: board.us  # type: ignore[attr-defined]
    clock.ticks_add = lambda a, b: a + b  # type: ignore[attr-defined]
    clock.ticks_diff = lambda a, b: a - b  # type: ignore[attr-defined]

    def sleep_us(n: int) -> None:
        board.us += n

    clock.sleep_us = sleep_us  # type: ignore[attr-defined]
    clock.sleep_ms = lambda n: sleep_us(1000 * n)  # type: ignore[attr-defined]
    module.ptr32 = ptr32  # type: ignore[attr-defined]
    module.ptr8 = memoryview  # type: ignore[attr-defined]
    module.time = clock  # type: ignore[attr-defined]
    return module, board


@pytest.fixture
def bank_module(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, SimBoard]:
    return load_bank(monkeypatch)


def _read(bank: object, board: SimBoard, n: int) -> tuple[list[int], list[int], int]:
    counts, status = [0] * n, [0] * n
    t = bank.read(counts, status)  # type: ignore[attr-defined]
    board.end_reads()
    return counts, status, t


@given(st.lists(st.integers(-(2**23), 2**23 - 1), min_size=8, max_size=8))
def test_bank_reads_every_chip_in_parallel(values: list[int]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        module, board = load_bank(mp)
        bank = module.HX711Bank(SCK, DOUTS)
        for chip, v in zip(board.chips, values, strict=True):
            chip.value, chip.ready = v, True
        counts, status, _ = _read(bank, board, 8)
    assert counts == values
    rails = (2**23 - 1, -(2**23))
    assert status == [module.SATURATED if v in rails else 0 for v in values]
    assert board.rises == 25  # channel A, gain 128


def test_bank_statuses_and_the_host_sees_them(bank_module: tuple[ModuleType, SimBoard]) -> None:
    module, board = bank_module
    bank = module.HX711Bank(SCK, DOUTS, dead_after=3)
    framer = fw.Framer(8)
    wire = b"\x00"
    board.chips[5].connected = False
    for i in range(5):
        for k, chip in enumerate(board.chips):
            chip.value, chip.ready = 1000 * k + i, k != 2 or i == 0
        before = board.us
        counts, status, t = _read(bank, board, 8)
        waited_ms = (board.us - before) / 1000
        wire += framer.frame(counts, status, t)
        if i == 0:
            assert status[2] == 0 and counts[2] == 2000
        elif i < 3:  # chip 2 missed: last good count, NOT_READY | STALE
            assert (counts[2], status[2]) == (2000, module.NOT_READY | module.STALE)
        else:  # given up as disconnected: not waited for any more
            assert (counts[2], status[2]) == (0, module.DISCONNECTED)
        if i == 4:  # chips 2 and 5 are given up: no more waiting for them
            assert waited_ms < 1
        assert counts[0] == i and status[0] == 0
    frames = Decoder().feed(wire)
    assert [f.counts[4] for f in frames] == [4000 + i for i in range(5)]
    assert frames[-1].status[5] == module.DISCONNECTED
    assert frames[1].time_us - frames[0].time_us > 0


def test_bank_flags_a_stretched_read_as_power_down(bank_module: tuple[ModuleType, SimBoard]):
    module, board = bank_module
    board.us_per_pulse = 5  # 25 pulses x 5 us: a high phase may have passed 60 us
    bank = module.HX711Bank(SCK, DOUTS[:2])
    board.chips[0].ready = board.chips[1].ready = True
    board.chips[0].value = -5
    counts, status, _ = _read(bank, board, 2)
    assert counts[0] == -5 and status == [module.POWER_DOWN, module.POWER_DOWN]
