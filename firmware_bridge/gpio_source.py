"""Several HX711 boards on the Pi's GPIO, read together into :class:`ReadingBlock` s.

Workflow: :class:`GpioLoadCells` opens one :class:`~firmware_bridge.hx711.HX711` per
board (through ``hx711_factory``, so tests can hand in anything with ``read()`` and
``close()``), then :meth:`GpioLoadCells.blocks` reads every board once per row, in
board order, and yields a block of ``round(block_s * sps)`` rows at a time. Column
``c`` of a block is logical channel ``c``; a channel no board feeds stays invalid.

A failing board never stops the others: its samples are marked invalid and counted
in :attr:`GpioLoadCells.stats`; after it times out or raises it is skipped for the rest
of the block (so a dead board does not slow every row by a timeout) and tried again at
the next block. One warning is logged when a channel starts failing and one note when
it recovers, not one per sample.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple, Protocol

import numpy as np
from gpiozero.exc import GPIOZeroError

from firmware_bridge.errors import BridgeError
from firmware_bridge.hx711 import HX711, HX711ConfigError, HX711TimeoutError
from models.types import RawReading, ReadingBlock, ReadingStatus

__all__ = [
    "BoardPins",
    "ChannelStats",
    "GpioLoadCells",
    "HX711Factory",
    "HX711PinsLike",
    "RawReader",
]

log = logging.getLogger(__name__)


class HX711PinsLike(Protocol):
    """What a board description needs: the shape of ``edge.config.HX711Pins``."""

    @property
    def channel(self) -> int: ...

    @property
    def dout(self) -> int: ...

    @property
    def pd_sck(self) -> int: ...

    @property
    def gain(self) -> int: ...


class BoardPins(NamedTuple):
    """A board given as a plain tuple: ``(channel, dout, pd_sck[, gain])``."""

    channel: int
    dout: int
    pd_sck: int
    gain: int = 128


class RawReader(Protocol):
    """The part of :class:`~firmware_bridge.hx711.HX711` this source uses."""

    def read(self) -> RawReading: ...

    def close(self) -> None: ...


class HX711Factory(Protocol):
    """Builds the reader of one board; :class:`~firmware_bridge.hx711.HX711` is one."""

    def __call__(
        self,
        dout_pin: int,
        pd_sck_pin: int,
        *,
        gain: int,
        sps: int,
        pin_factory: Any,
        ready_timeout: float | None,
        channel: int,
    ) -> RawReader: ...


@dataclass(slots=True)
class ChannelStats:
    """Running counts for one channel since the source opened."""

    samples: int = 0
    invalid: int = 0
    timeouts: int = 0
    saturated: int = 0
    power_down: int = 0
    errors: int = 0
    skipped: int = 0


def _board(b: HX711PinsLike | tuple[int, ...]) -> BoardPins:
    if isinstance(b, BoardPins):
        return b
    if isinstance(b, tuple):
        return BoardPins(*b)
    return BoardPins(int(b.channel), int(b.dout), int(b.pd_sck), int(b.gain))


class GpioLoadCells:
    """Load-cell channels from HX711 boards wired straight to GPIO.

    ``boards`` describe each board (``edge.config.HX711Pins`` or plain tuples);
    ``sps`` is the rate the boards are wired for. ``pin_factory`` and
    ``ready_timeout`` are passed to every board; ``hx711_factory`` defaults to
    :class:`~firmware_bridge.hx711.HX711`.
    """

    def __init__(
        self,
        boards: Sequence[HX711PinsLike | tuple[int, ...]],
        *,
        sps: int,
        pin_factory: Any = None,
        hx711_factory: HX711Factory | None = None,
        ready_timeout: float | None = None,
    ) -> None:
        pins = [_board(b) for b in boards]
        if not pins:
            raise HX711ConfigError("at least one HX711 board is needed")
        channels = [p.channel for p in pins]
        if len(set(channels)) != len(channels):
            raise HX711ConfigError(f"two boards feed the same channel: {sorted(channels)}")
        if min(channels) < 0:
            raise HX711ConfigError(f"channels must be >= 0, got {sorted(channels)}")
        make: HX711Factory = hx711_factory if hx711_factory is not None else HX711
        self._sps = sps
        self._columns = max(channels) + 1
        self._readers: list[tuple[int, RawReader]] = []
        try:
            for p in pins:
                reader = make(
                    p.dout,
                    p.pd_sck,
                    gain=p.gain,
                    sps=sps,
                    pin_factory=pin_factory,
                    ready_timeout=ready_timeout,
                    channel=p.channel,
                )
                self._readers.append((p.channel, reader))
        except BaseException:
            self.close()
            raise
        self._stats = {p.channel: ChannelStats() for p in pins}
        self._failing: dict[int, int] = {}  # channel -> invalid samples in this burst

    @property
    def channels(self) -> int:
        """Columns of every block: the highest channel number plus one."""
        return self._columns

    @property
    def stats(self) -> Mapping[int, ChannelStats]:
        """Per-channel counts of samples, invalid samples and their causes (live)."""
        return MappingProxyType(self._stats)

    def blocks(self, block_s: float) -> Iterator[ReadingBlock]:
        """Blocks of about ``block_s`` seconds each, for as long as the caller wants."""
        if block_s <= 0:
            raise HX711ConfigError(f"block_s must be > 0, got {block_s}")
        rows = max(1, round(block_s * self._sps))
        while True:
            yield self.read_block(rows)

    def read_block(self, rows: int) -> ReadingBlock:
        """Read ``rows`` rows from every board into one block."""
        t = np.empty(rows, dtype=np.float64)
        counts = np.zeros((rows, self._columns), dtype=np.int32)
        valid = np.zeros((rows, self._columns), dtype=np.bool_)
        skip: set[int] = set()
        for i in range(rows):
            stamps: list[float] = []
            for channel, reader in self._readers:
                stats = self._stats[channel]
                stats.samples += 1
                if channel in skip:
                    stats.skipped += 1
                    self._invalid(channel, None)
                    continue
                try:
                    reading = reader.read()
                except HX711TimeoutError as exc:
                    stats.timeouts += 1
                    skip.add(channel)
                    self._invalid(channel, exc)
                    continue
                except (BridgeError, GPIOZeroError, OSError) as exc:
                    stats.errors += 1
                    skip.add(channel)
                    self._invalid(channel, exc)
                    continue
                stamps.append(reading.t)
                counts[i, channel] = reading.counts
                if reading.valid:
                    valid[i, channel] = True
                    self._valid(channel)
                    continue
                if reading.status & ReadingStatus.SATURATED:
                    stats.saturated += 1
                if reading.status & ReadingStatus.POWER_DOWN:
                    stats.power_down += 1
                self._invalid(channel, reading.status)
            t[i] = sum(stamps) / len(stamps) if stamps else time.monotonic()
        return ReadingBlock(t=t, counts=counts, valid=valid)

    def close(self) -> None:
        """Close every board. Safe to call twice."""
        readers, self._readers = self._readers, []
        for _, reader in readers:
            try:
                reader.close()
            except Exception:  # closing the rest matters more than one failure
                log.exception("closing an HX711 failed")

    def __enter__(self) -> GpioLoadCells:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _invalid(self, channel: int, cause: object) -> None:
        self._stats[channel].invalid += 1
        burst = self._failing.get(channel)
        if burst is None:
            log.warning(
                "load-cell channel %d: HX711 sample invalid (%s); counting further "
                "failures in stats until it recovers",
                channel,
                cause,
            )
            self._failing[channel] = 1
        else:
            self._failing[channel] = burst + 1

    def _valid(self, channel: int) -> None:
        burst = self._failing.pop(channel, None)
        if burst is not None:
            log.info(
                "load-cell channel %d: HX711 recovered after %d invalid samples", channel, burst
            )
