"""GpioLoadCells over simulated HX711 boards on one gpiozero MockFactory."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from firmware_bridge.gpio_source import BoardPins, GpioLoadCells, RawReader
from firmware_bridge.hx711 import HX711, HX711ConfigError
from firmware_bridge.mock_hx711 import MockHX711

SPS = 80
BLOCK_S = 0.1  # 8 rows at 80 SPS
ROWS = round(BLOCK_S * SPS)
# Room for the odd clock pulse a loaded machine stretches past 60 µs.
PATIENT_HX711 = functools.partial(HX711, max_retries=20)


@dataclass(frozen=True)
class Pins:
    """Shaped like edge.config.HX711Pins."""

    channel: int
    dout: int
    pd_sck: int
    gain: int = 128


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def test_one_hanging_board_does_not_stop_the_others(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    boards = [Pins(0, 5, 6), Pins(1, 13, 19, gain=32), Pins(2, 20, 21)]
    chips = [
        MockHX711(5, 6, pin_factory=factory, values=1000),
        MockHX711(13, 19, pin_factory=factory, values={32: -2000}),
        MockHX711(20, 21, pin_factory=factory, values=3000, hang=True),
    ]
    caplog.set_level(logging.INFO, logger="firmware_bridge.gpio_source")
    with GpioLoadCells(
        boards, sps=SPS, pin_factory=factory, ready_timeout=0.02, hx711_factory=PATIENT_HX711
    ) as cells:
        stream = cells.blocks(BLOCK_S)
        first, second = itertools.islice(stream, 2)
        for block in (first, second):
            assert block.counts.shape == (ROWS, 3)
            assert block.valid[:, 0].all()
            assert block.valid[:, 1].all()
            assert not block.valid[:, 2].any()
            assert (block.counts[:, 0] == 1000).all()
            assert (block.counts[:, 1] == -2000).all()
            assert np.all(np.diff(block.t) >= 0)
        stats = cells.stats
        assert stats[2].invalid == 2 * ROWS
        assert stats[2].timeouts == 2  # tried once per block, then skipped
        assert stats[2].skipped == 2 * (ROWS - 1)
        assert stats[0].invalid == stats[1].invalid == 0
        assert stats[0].samples == 2 * ROWS
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one per burst, not per sample
        assert "channel 2" in warnings[0].getMessage()

        chips[2].hang = False
        third = next(stream)
        assert third.valid.all()
        assert (third.counts[:, 2] == 3000).all()
        assert any("recovered" in r.getMessage() for r in caplog.records)
    assert chips[1].channel == "B"


def test_saturated_samples_are_flagged_and_counted(factory: MockFactory) -> None:
    source = itertools.cycle([500, 0x7FFFFF])
    chip = MockHX711(5, 6, pin_factory=factory, values=lambda: next(source))
    with GpioLoadCells(
        [(0, 5, 6)], sps=SPS, pin_factory=factory, hx711_factory=PATIENT_HX711
    ) as cells:
        block = cells.read_block(10)
    delivered = [c.counts for c in chip.reads[-10:]]
    expected_valid = np.array([v != 0x7FFFFF for v in delivered])
    assert (block.valid[:, 0] == expected_valid).all()
    assert (block.counts[block.valid[:, 0], 0] == 500).all()
    assert cells.stats[0].saturated == int((~expected_valid).sum()) > 0


def test_columns_follow_channel_numbers(factory: MockFactory) -> None:
    MockHX711(5, 6, pin_factory=factory, values=7)
    MockHX711(13, 19, pin_factory=factory, values=9)
    with GpioLoadCells(
        [BoardPins(3, 13, 19), BoardPins(0, 5, 6)],
        sps=10,
        pin_factory=factory,
        hx711_factory=PATIENT_HX711,
    ) as cells:
        assert cells.channels == 4
        block = next(cells.blocks(0.2))  # 2 rows at 10 SPS
    assert block.counts.shape == (2, 4)
    assert block.valid[:, [0, 3]].all()
    assert not block.valid[:, [1, 2]].any()
    assert (block.counts[:, 3] == 9).all()
    assert [r.counts for r in block.readings() if r.channel == 0] == [7, 7]


def test_factory_gets_each_board_and_the_shared_settings(factory: MockFactory) -> None:
    MockHX711(5, 6, pin_factory=factory, values=1)
    MockHX711(13, 19, pin_factory=factory, values={64: 2})
    calls: list[tuple[Any, ...]] = []

    def make(dout: int, pd_sck: int, **kw: Any) -> RawReader:
        calls.append((dout, pd_sck, kw["gain"], kw["sps"], kw["channel"], kw["ready_timeout"]))
        return PATIENT_HX711(dout, pd_sck, **kw)

    boards = [Pins(0, 5, 6), Pins(1, 13, 19, gain=64)]
    with GpioLoadCells(
        boards, sps=10, pin_factory=factory, hx711_factory=make, ready_timeout=0.5
    ) as cells:
        block = cells.read_block(1)
    assert calls == [(5, 6, 128, 10, 0, 0.5), (13, 19, 64, 10, 1, 0.5)]
    assert block.counts.tolist() == [[1, 2]]


def test_close_releases_every_board(factory: MockFactory) -> None:
    MockHX711(5, 6, pin_factory=factory, values=1)
    MockHX711(13, 19, pin_factory=factory, values=2)
    boards = [(0, 5, 6), (1, 13, 19)]
    cells = GpioLoadCells(boards, sps=SPS, pin_factory=factory, hx711_factory=PATIENT_HX711)
    cells.close()
    cells.close()
    with GpioLoadCells(boards, sps=SPS, pin_factory=factory, hx711_factory=PATIENT_HX711) as again:
        assert again.read_block(1).counts.tolist() == [[1, 2]]


@pytest.mark.parametrize(
    "boards",
    [[], [(0, 5, 6), (0, 13, 19)], [(-1, 5, 6)], [(0, 5, 6, 100)]],
)
def test_bad_board_lists_are_config_errors(
    factory: MockFactory, boards: list[tuple[int, ...]]
) -> None:
    with pytest.raises(HX711ConfigError):
        GpioLoadCells(boards, sps=SPS, pin_factory=factory)
    # Nothing stays claimed after a failed open.
    HX711(5, 6, pin_factory=factory).close()
